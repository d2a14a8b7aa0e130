import Foundation

/// Guest memory the VMM hands to the writer: a host mapping of one guest RAM range. Sendable because the
/// writer threads read it while the VM is paused; the caller guarantees the mapping outlives the call.
struct GuestMemorySource: @unchecked Sendable {
    let guestAddress: UInt64
    let bytes: UnsafeRawBufferPointer
}

/// Writes `memory.bin`: header, range table, the chunk records, then the chunk index and the trailer.
///
/// Every writer thread encodes a chunk, takes the next file offset in chunk order (`AppendSequencer`) and
/// writes the record itself: the head from its buffer, raw runs straight from guest memory. So compression
/// and checksums run on every core while records go to the file, and memory in flight is one head buffer
/// per thread.
///
/// A durable snapshot writes raw runs with O_DIRECT (they are page-aligned in the file for this): they must
/// reach the disk anyway, and this way incompressible memory is never copied, not even into the page cache
/// (on this 2-core VM that copy costs 0.1–0.5 CPU s per 512 MiB, and writers of one file queue on its inode
/// lock for it). A non-durable snapshot writes everything through the page cache and returns before the
/// disk has it, as QEMU's `migrate "exec:…"` does.
enum MemoryFileWriter {
    struct Output {
        var stats: MemoryStats
        var trailerChecksum: UInt64
    }

    /// `durable`: raw runs go to disk directly (where the filesystem supports it), and each head starts
    /// going to disk as soon as it is written instead of all at once in the caller's final fsync.
    static func write(to io: SnapshotFileIO, snapshotID: UInt64, sources: [GuestMemorySource],
                      compression: MemoryCompression, threads: Int, chunkSize: Int, durable: Bool) throws -> Output {
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

        var prefix = FileHeader(magic: SnapshotFormat.memoryMagic, snapshotID: snapshotID).encode()
        prefix += RangeTable(ranges: ranges, chunkSize: chunkSize).encode()
        try io.write(prefix, at: 0)

        let plan = ChunkPlan(ranges: ranges, chunkSize: chunkSize)
        let direct = durable ? io.openDirect() : nil
        let totals = Totals()
        let sequencer = AppendSequencer(count: plan.count, startingAt: UInt64(prefix.count))
        try ParallelJobs.run(count: plan.count, threads: max(1, min(threads, 64)), name: "snapshot-write") {
            let encoder = try ChunkEncoder(compression: compression, chunkSize: chunkSize)
            return { item in
                let entry = plan[item]
                let encoded = encoder.encode(range: entry.range, offset: entry.offset,
                                             source: sources[entry.range].bytes.baseAddress! + Int(entry.offset),
                                             length: entry.length)
                guard let offset = sequencer.reserve(item, length: { encoded.recordLength(at: $0) }) else { return }
                try writeRecord(encoded, at: offset, padding: encoder.padding, to: io, direct: direct, writeback: durable)
                totals.add(encoded)
            }
        } failed: {
            sequencer.abandon()
        }

        var stats = totals.stats
        let indexOffset = sequencer.endOffset
        var trailer = MemoryTrailer(indexOffset: indexOffset, chunkCount: UInt64(plan.count),
                                    totalBytes: ranges.reduce(0) { $0 + $1.size },
                                    zeroPages: stats.zeroPages, storedBytes: stats.storedBytes,
                                    rawBytes: stats.rawBytes)
        let tail = trailer.encodeWithIndex(sequencer.offsets)
        try io.write(tail, at: indexOffset)
        stats.bytesIn = trailer.totalBytes
        stats.bytesOut = indexOffset + UInt64(tail.count)
        stats.chunks = plan.count
        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Output(stats: stats, trailerChecksum: trailer.checksum)
    }

    /// The head and the padding through the page cache; then the raw runs: whole-page ones (all but a
    /// range's partial last page) through `direct` when there is one.
    private static func writeRecord(_ encoded: ChunkEncoder.Result, at offset: UInt64, padding: UnsafeRawBufferPointer,
                                    to io: SnapshotFileIO, direct: SnapshotFileIO?, writeback: Bool) throws {
        let headEnd = offset + UInt64(encoded.head.count)
        let rawStart = encoded.rawRuns.isEmpty ? headEnd : ChunkRecordLayout.rawStart(headEnd: headEnd)
        try io.write([encoded.head, UnsafeRawBufferPointer(rebasing: padding[0..<Int(rawStart - headEnd)])], at: offset)
        if writeback { io.startWriteback(offset: offset, length: rawStart - offset) }
        let directRuns = direct == nil ? 0 : encoded.rawRuns.prefix(while: SnapshotFileIO.directWritable).count
        let directBytes = encoded.rawRuns[..<directRuns].reduce(0) { $0 + $1.count }
        try direct?.write(Array(encoded.rawRuns[..<directRuns]), at: rawStart)
        try io.write(Array(encoded.rawRuns[directRuns...]), at: rawStart + UInt64(directBytes))
    }

    /// Per-chunk results summed across writer threads.
    private final class Totals: @unchecked Sendable {
        private let monitor = Monitor()
        private var value = MemoryStats()

        func add(_ result: ChunkEncoder.Result) {
            monitor.locked {
                value.pages += UInt64(result.pages)
                value.zeroPages += UInt64(result.zeroPages)
                value.storedBytes += UInt64(result.storedBytes)
                value.rawRuns += result.rawRuns.count
                value.rawBytes += UInt64(result.rawBytes)
            }
        }

        var stats: MemoryStats { monitor.locked { value } }
    }
}
