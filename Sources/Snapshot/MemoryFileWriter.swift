import Foundation

/// Guest memory the VMM hands to the writer: a host mapping of one guest RAM range. Sendable because the
/// compressor threads read it while the VM is paused; the caller guarantees the mapping outlives the call.
struct GuestMemorySource: @unchecked Sendable {
    let guestAddress: UInt64
    let bytes: UnsafeRawBufferPointer
}

/// Writes `memory.bin`: header, range table, chunk records from the compressor pipeline in guest order,
/// then the chunk index and the trailer.
enum MemoryFileWriter {
    struct Output {
        var stats: MemoryStats
        var trailerChecksum: UInt64
    }

    /// With `startWriteback` (durable snapshots), written data goes to disk while later chunks are still being
    /// compressed, instead of all at once in the final fsync.
    static func write(to io: SnapshotFileIO, snapshotID: UInt64, sources: [GuestMemorySource],
                      compression: MemoryCompression, threads: Int, chunkSize: Int,
                      startWriteback: Bool = false) throws -> Output {
        let start = DispatchTime.now().uptimeNanoseconds
        let ranges = sources.map { MemoryRange(guestAddress: $0.guestAddress, size: UInt64($0.bytes.count)) }
        if let (index, problem) = RangeRules.problem(ranges) {
            throw SnapshotError.invalidArgument("memory range \(index) (\(ranges[index])): \(problem)")
        }
        for (index, source) in sources.enumerated() where source.bytes.baseAddress == nil {
            throw SnapshotError.invalidArgument("memory range \(index): no host mapping")
        }
        guard SnapshotFormat.chunkSizeLimits.contains(chunkSize), chunkSize % SnapshotFormat.pageSize == 0 else {
            throw SnapshotError.invalidArgument("chunk size \(chunkSize) must be whole pages in 64 KiB…64 MiB")
        }
        try compression.validate()

        var offset: UInt64 = 0
        func append(_ bytes: UnsafeRawBufferPointer) throws {
            try io.write(bytes, at: offset)
            offset += UInt64(bytes.count)
        }
        try FileHeader(magic: SnapshotFormat.memoryMagic, snapshotID: snapshotID).encode().withUnsafeBytes(append)
        try RangeTable(ranges: ranges, chunkSize: chunkSize).encode().withUnsafeBytes(append)

        let plan = ChunkPlan(ranges: ranges, chunkSize: chunkSize)
        let totals = Totals()
        var recordOffsets: [UInt64] = []
        var writtenBack: UInt64 = 0
        let writebackStep: UInt64 = 32 << 20
        recordOffsets.reserveCapacity(plan.count)
        try OrderedPipeline.run(
            count: plan.count, threads: max(1, min(threads, 64)),
            bufferSize: ChunkRecordLayout.maxRecordLength(chunkSize: chunkSize), name: "snapshot-compress",
            makeProducer: {
                let encoder = try ChunkEncoder(compression: compression, chunkSize: chunkSize)
                return { item, buffer in
                    let entry = plan[item]
                    let source = sources[entry.range].bytes.baseAddress! + Int(entry.offset)
                    let result = encoder.encode(range: entry.range, offset: entry.offset, source: source,
                                                length: entry.length, into: buffer)
                    totals.add(result)
                    return result.recordLength
                }
            },
            consume: { _, record in
                recordOffsets.append(offset)
                try append(record)
                if startWriteback && offset - writtenBack >= writebackStep {
                    io.startWriteback(offset: writtenBack, length: offset - writtenBack)
                    writtenBack = offset
                }
            })

        var stats = totals.stats
        var trailer = MemoryTrailer(indexOffset: offset, chunkCount: UInt64(plan.count),
                                    totalBytes: ranges.reduce(0) { $0 + $1.size },
                                    zeroPages: stats.zeroPages, storedBytes: stats.storedBytes)
        try trailer.encodeWithIndex(recordOffsets).withUnsafeBytes(append)
        stats.bytesIn = trailer.totalBytes
        stats.bytesOut = offset
        stats.chunks = plan.count
        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Output(stats: stats, trailerChecksum: trailer.checksum)
    }

    /// Per-chunk results summed across compressor threads.
    private final class Totals: @unchecked Sendable {
        private let monitor = Monitor()
        private var value = MemoryStats()

        func add(_ result: ChunkEncoder.Result) {
            monitor.locked {
                value.pages += UInt64(result.pages)
                value.zeroPages += UInt64(result.zeroPages)
                value.storedBytes += UInt64(result.storedBytes)
                value.rawRuns += result.rawRuns
            }
        }

        var stats: MemoryStats { monitor.locked { value } }
    }
}
