import Foundation

extension SnapshotReader {
    /// Restores guest memory for `memory_restore_mode=ondemand`: like `restoreMemory(into:)`, except that
    /// version-2 raw runs (incompressible memory) are mapped copy-on-write from `memory.bin` instead of read,
    /// so the guest can run before they are; the kernel reads each page when the guest first touches it.
    ///
    /// What is verified when: before this returns, the same as a copying restore for everything but the
    /// mapped runs — every chunk head's checksum (which covers the raw runs' own checksums), every compressed
    /// run, runs that could not be mapped. The mapped runs' checksums are verified by `OnDemandMemory.verify`,
    /// which the caller runs after the guest started. The file must stay unchanged while the guest runs:
    /// pages not yet written by the guest are the file's pages (deleting the file is fine, truncating or
    /// rewriting it is not).
    ///
    /// The destination must be private memory mapped by the caller (the mapped runs replace parts of it).
    /// With `populate`, mapped pages are read in now (`prefault`).
    public func restoreMemoryOnDemand(into ranges: [(guestAddress: UInt64, bytes: UnsafeMutableRawBufferPointer)],
                                      threads: Int = SnapshotWriter.defaultThreads,
                                      populate: Bool = false) throws -> OnDemandMemory {
        let mapper = RawRunMapper(populate: populate)
        let stats = try restore(into: try targets(declared: ranges), threads: threads, zeroFill: false, mapper: mapper)
        return OnDemandMemory(reader: self, runs: mapper.runs, stats: stats)
    }
}

/// Guest memory restored on demand: what was mapped, and the check of those runs' checksums that is still due.
public final class OnDemandMemory: Sendable {
    private let reader: SnapshotReader
    private let runs: [RawRunMapper.MappedRun]
    /// What the restore did (`mappedRuns`, `mappedBytes`: what `verify` checks).
    public let stats: RestoreStats

    init(reader: SnapshotReader, runs: [RawRunMapper.MappedRun], stats: RestoreStats) {
        self.reader = reader
        self.runs = runs
        self.stats = stats
    }

    /// Reads every mapped run from `memory.bin` and checks it against its checksum; throws the first
    /// damaged one (a `SnapshotError` naming the chunk and run). Returns early, without an error, once
    /// `isCancelled` says so (the VM was torn down).
    @discardableResult
    public func verify(threads: Int = 1, isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> RestoreStats {
        try reader.verify(runs, threads: threads, isCancelled: isCancelled)
    }
}
