import Foundation
import Zstd

/// Compresses Memory batches on worker threads while the pass thread sends earlier ones, so that zstd runs
/// on every core while the link is busy. Batches go out in the order they were submitted (a later pass's
/// copy of a page must not overtake an earlier one). A batch that does not shrink — or whose samples the
/// compressibility probe finds incompressible, which costs ≈ 1 % of compressing it — goes out as plain
/// Memory. Zero pages never come here: they stay MemoryZero markers or are skipped.
///
/// Guest pages are compressed where they lie while the guest runs, as plain Memory sends them: a page
/// written meanwhile may travel torn, and is sent again because dirty logging caught the write. One
/// pipeline serves a whole migration (its contexts, buffers and threads are reused by every pass).
public final class CompressionPipeline {
    public struct Stats: Sendable, Equatable {
        /// Page bytes submitted, and what went on the wire for them (frames, or the raw bytes of plain batches).
        public var pageBytes: UInt64 = 0
        public var sentBytes: UInt64 = 0
        public var compressedBatches = 0
        public var plainBatches = 0
    }

    /// zstd's fastest positive level: ≈ 320 MB/s per core on dense data here, far more on typical memory.
    public static let defaultLevel: Int32 = 1

    private var idle: [CompressionSlot]
    /// Submitted batches, oldest first.
    private var inFlight: [CompressionSlot] = []
    public private(set) var stats = Stats()

    /// `level` must be one of `Zstd.levels` (the API checks it). One slot more than `workers`: the oldest batch
    /// is on the wire while the others compress.
    public init(level: Int32, workers: Int = ProcessInfo.processInfo.activeProcessorCount) throws(MigrationError) {
        idle = []
        for index in 0...max(workers, 1) {
            idle.append(try CompressionSlot(level: level, name: "migration-zstd-\(index)"))
        }
    }

    /// Compression still running reads guest memory and writes the slots' buffers: it must end first.
    deinit {
        for slot in inFlight { slot.done.wait() }
        for slot in idle + inFlight { slot.stop() }
    }

    /// Hands a batch (`ranges` and their bytes, same order) to a worker; when every worker is busy, sends the
    /// oldest batch first.
    func submit(_ ranges: [PageRange], pages: [UnsafeRawBufferPointer], over client: MigrationClient) throws(MigrationError) {
        if idle.isEmpty { try sendOldest(over: client) }
        let slot = idle.removeLast()
        slot.start(ranges, pages)
        inFlight.append(slot)
    }

    /// Sends every batch still in the pipeline.
    func drain(over client: MigrationClient) throws(MigrationError) {
        while !inFlight.isEmpty { try sendOldest(over: client) }
    }

    private func sendOldest(over client: MigrationClient) throws(MigrationError) {
        let slot = inFlight.removeFirst()
        slot.done.wait()
        idle.append(slot)
        let bytes = slot.pages.reduce(0) { $0 + UInt64($1.count) }
        stats.pageBytes += bytes
        if let frame = slot.frame {
            try client.sendCompressedMemory(slot.ranges, frame: frame)
            stats.compressedBatches += 1
            stats.sentBytes += UInt64(frame.count)
        } else {
            try client.sendMemory(slot.ranges, pages: slot.pages)
            stats.plainBatches += 1
            stats.sentBytes += bytes
        }
    }
}

/// One batch in the pipeline and the thread that compresses it, with its own zstd context and frame buffer.
/// A dedicated thread, not the cooperative pool: it runs CPU-bound for whole passes. The batch is handed
/// over through `work` and the result back through `done`, so the fields are never touched by both threads
/// at once.
private final class CompressionSlot: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    private let work = DispatchSemaphore(value: 0)
    private let level: Int32
    private let compressor: ZstdCompressor
    private let probe = CompressibilityProbe()
    private let output: UnsafeMutableRawPointer
    private(set) var ranges: [PageRange] = []
    private(set) var pages: [UnsafeRawBufferPointer] = []
    /// After `done`: the frame in `output`, or nil to send the batch plain.
    private(set) var frame: UnsafeRawBufferPointer?
    private var stopping = false

    init(level: Int32, name: String) throws(MigrationError) {
        do {
            compressor = try ZstdCompressor()
        } catch {
            throw .failed("cannot compress migration memory: \(error)")
        }
        self.level = level
        output = .allocate(byteCount: Int(MemoryPass.maxBatchBytes), alignment: 64)
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    deinit { output.deallocate() }

    func start(_ ranges: [PageRange], _ pages: [UnsafeRawBufferPointer]) {
        self.ranges = ranges
        self.pages = pages
        work.signal()
    }

    /// Ends the thread once it is idle (it holds the last reference).
    func stop() {
        stopping = true
        work.signal()
    }

    private func loop() {
        while true {
            work.wait()
            if stopping { return }
            let count = pages.reduce(0) { $0 + $1.count }
            frame = nil
            // Capacity one byte short of the batch: a frame is only worth sending if it is smaller.
            if probe.worthCompressing(pages, with: compressor, level: level),
               let length = compressor.compress(pages, into: output, capacity: count - 1, level: level) {
                frame = UnsafeRawBufferPointer(start: output, count: length)
            }
            done.signal()
        }
    }
}
