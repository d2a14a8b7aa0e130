/// One pass over guest memory on the source: collects page runs into Memory messages (pages written
/// straight from guest memory) and MemoryZero messages (ranges only), flushed when a batch is full.
///
/// With a `CompressionPipeline`, data batches are compressed on its workers and sent in order as
/// MemoryCompressed (or plain Memory when they do not shrink); zero runs are never compressed.
///
/// Batches are large (8 MiB) so that the per-message acknowledgement costs little bandwidth, and small
/// enough that the destination's progress and a cancel are never far away.
public final class MemoryPass {
    public struct Stats: Sendable, Equatable {
        public var dataPages = 0
        public var zeroPages = 0
        public var messages = 0
    }

    public static let maxBatchBytes: UInt64 = 8 << 20
    public static let maxBatchRanges = 4096

    private let client: MigrationClient
    private let sendZeroRuns: Bool
    private let compression: CompressionPipeline?
    private var dataRanges: [PageRange] = []
    private var dataBytes: [UnsafeRawBufferPointer] = []
    private var dataLength: UInt64 = 0
    private var zeroRanges: [PageRange] = []
    public private(set) var stats = Stats()

    /// `sendZeroRuns: false` for the first pass: the destination's RAM starts zeroed, so only pages with
    /// data need to travel. `compression` only if Start announced it.
    public init(client: MigrationClient, sendZeroRuns: Bool, compression: CompressionPipeline? = nil) {
        self.client = client
        self.sendZeroRuns = sendZeroRuns
        self.compression = compression
    }

    public func add(_ run: PageRun) throws(MigrationError) {
        if run.isZero {
            stats.zeroPages += run.pages
            guard sendZeroRuns else { return }
            zeroRanges.append(PageRange(gpa: run.gpa, length: run.length))
            if zeroRanges.count == Self.maxBatchRanges { try flushZero() }
            return
        }
        stats.dataPages += run.pages
        var offset: UInt64 = 0
        while offset < run.length {
            let length = min(run.length - offset, Self.maxBatchBytes - dataLength)
            dataRanges.append(PageRange(gpa: run.gpa + offset, length: length))
            dataBytes.append(UnsafeRawBufferPointer(start: run.host + Int(offset), count: Int(length)))
            dataLength += length
            offset += length
            if dataLength == Self.maxBatchBytes || dataRanges.count == Self.maxBatchRanges { try flushData() }
        }
    }

    /// Sends what is still batched, including what the compression workers hold: the next pass's copy of a
    /// page must not arrive before this one's.
    public func finish() throws(MigrationError) {
        try flushData()
        try compression?.drain(over: client)
        try flushZero()
    }

    private func flushData() throws(MigrationError) {
        guard !dataRanges.isEmpty else { return }
        if let compression {
            try compression.submit(dataRanges, pages: dataBytes, over: client)
        } else {
            try client.sendMemory(dataRanges, pages: dataBytes)
        }
        stats.messages += 1
        dataRanges.removeAll(keepingCapacity: true)
        dataBytes.removeAll(keepingCapacity: true)
        dataLength = 0
    }

    private func flushZero() throws(MigrationError) {
        guard !zeroRanges.isEmpty else { return }
        try client.sendZero(zeroRanges)
        stats.messages += 1
        zeroRanges.removeAll(keepingCapacity: true)
    }
}
