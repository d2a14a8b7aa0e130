import Foundation

/// Opens a snapshot directory written by `SnapshotWriter`.
///
/// Opening checks everything that is cheap to check: headers and format versions, every section's checksum,
/// that config.json and memory.bin belong to this state file, memory.bin's range table, index and trailer.
/// Memory chunks are verified as they are restored (before the guest can run) or by `verifyAll()`.
public final class SnapshotReader: @unchecked Sendable {
    public let directory: URL
    /// The format version of the files (this build reads 1…`SnapshotFormat.version`; both files have the same).
    public let formatVersion: UInt32
    /// Random id written into both binary files, so that files of different snapshots are never mixed.
    public let snapshotID: UInt64
    public let created: Date
    /// The VM configuration exactly as the writer was given it.
    public let config: Data
    /// The sections in file order.
    public let sections: [SectionInfo]
    private let sectionsByID: [String: Section]
    private let memory: MemoryFileReader

    public init(directory: URL) throws {
        self.directory = directory
        let dir = directory.path
        try SnapshotDirectory.checkIsDirectory(dir)
        let path = { (name: String) in directory.appendingPathComponent(name).path }

        let stateName = SnapshotFormat.stateFileName
        let stateIO = try SnapshotFileIO.openForReading(path: path(stateName), name: stateName, directory: dir)
        let stateSize = try stateIO.size()
        guard stateSize <= SnapshotFormat.maxStateFileSize else {
            throw SnapshotError.notSnapshotFile(file: stateName, found: "\(stateSize) bytes is too large for a state file")
        }
        let stateBytes = try stateIO.read(count: Int(stateSize), at: 0)
        let state = try stateBytes.withUnsafeBytes { try StateFileReader(bytes: $0) }
        formatVersion = state.header.version
        snapshotID = state.header.snapshotID
        created = Date(timeIntervalSince1970: TimeInterval(state.bindings.createdUnixTime))
        sections = state.sections.map(\.info)
        sectionsByID = Dictionary(uniqueKeysWithValues: state.sections.map { ($0.id, $0) })

        let configName = SnapshotFormat.configFileName
        let configIO = try SnapshotFileIO.openForReading(path: path(configName), name: configName, directory: dir)
        let configSize = try configIO.size()
        guard configSize == state.bindings.configLength else {
            throw SnapshotError.mismatch(file: configName, problem:
                "\(configSize) bytes, but \(stateName) records \(state.bindings.configLength) (truncated or edited)")
        }
        let configBytes = try configIO.read(count: Int(configSize), at: 0)
        guard XXH64.hash(configBytes) == state.bindings.configChecksum else {
            throw SnapshotError.mismatch(file: configName, problem:
                "checksum does not match the one \(stateName) records (corrupted or edited)")
        }
        config = Data(configBytes)

        let memoryName = SnapshotFormat.memoryFileName
        memory = try MemoryFileReader(io: SnapshotFileIO.openForReading(path: path(memoryName), name: memoryName,
                                                                       directory: dir, direct: true))
        guard memory.header.snapshotID == snapshotID else {
            throw SnapshotError.mismatch(file: memoryName, problem:
                "belongs to another snapshot (id \(hex(memory.header.snapshotID)), \(stateName) has \(hex(snapshotID)))")
        }
        guard memory.header.version == formatVersion else {
            throw SnapshotError.mismatch(file: memoryName, problem:
                "has format version \(memory.header.version), \(stateName) has \(formatVersion) (files of different snapshots)")
        }
        guard memory.fileSize == state.bindings.memoryLength,
              memory.trailer.checksum == state.bindings.memoryTrailerChecksum else {
            throw SnapshotError.mismatch(file: memoryName, problem:
                "is not the memory file \(stateName) records (\(memory.fileSize) bytes, expected \(state.bindings.memoryLength))")
        }
    }

    // MARK: - Sections

    /// The section with this id, payload checksum verified, or nil.
    public func section(id: String) -> Section? { sectionsByID[id] }

    /// The section with this id and type; a clear error if it is missing or of another type.
    public func section(id: String, type: String) throws -> Section {
        guard let section = sectionsByID[id] else { throw SnapshotError.sectionMissing(id: id) }
        guard section.type == type else { throw SnapshotError.sectionType(id: id, expected: type, found: section.type) }
        return section
    }

    // MARK: - Memory

    /// The guest memory ranges, in the order the writer was given them.
    public var memoryRanges: [MemoryRange] { memory.table.ranges }
    public var memoryChunkSize: Int { memory.table.chunkSize }
    /// Where each chunk is (for inspection).
    public var memoryChunks: [ChunkLocation] { memory.chunks }
    /// Totals from the memory trailer: guest bytes, zero pages, stored page data (of which `rawBytes` in
    /// page-aligned raw runs, which an on-demand restore maps: 0 in version 1), file size.
    public var memorySummary: (totalBytes: UInt64, zeroPages: UInt64, storedBytes: UInt64, rawBytes: UInt64,
                               fileSize: UInt64) {
        (memory.trailer.totalBytes, memory.trailer.zeroPages, memory.trailer.storedBytes, memory.trailer.rawBytes,
         memory.fileSize)
    }

    /// Restores guest memory. `destination` is asked once per range for its host mapping, which must be
    /// exactly the range's size. Each chunk's head is checksummed before its runs are decompressed straight
    /// into place; version-2 raw runs are read straight into place and checked against their own checksums
    /// there. Zero pages are not touched unless `zeroFill` (use it when the memory is not freshly mapped).
    /// After an error the memory is partly written: the VM must not run.
    @discardableResult
    public func restoreMemory(threads: Int = SnapshotWriter.defaultThreads, zeroFill: Bool = false,
                              into destination: (MemoryRange) throws -> UnsafeMutableRawBufferPointer) throws -> RestoreStats {
        try restore(into: try targets(destination), threads: threads, zeroFill: zeroFill, mapper: nil)
    }

    /// Restores guest memory into the caller's declared layout, which must be exactly the snapshot's ranges
    /// (same guest addresses and sizes, any order).
    @discardableResult
    public func restoreMemory(into ranges: [(guestAddress: UInt64, bytes: UnsafeMutableRawBufferPointer)],
                              threads: Int = SnapshotWriter.defaultThreads, zeroFill: Bool = false) throws -> RestoreStats {
        try restore(into: try targets(declared: ranges), threads: threads, zeroFill: zeroFill, mapper: nil)
    }

    /// The host mapping of every range, checked against the range's size.
    private func targets(_ destination: (MemoryRange) throws -> UnsafeMutableRawBufferPointer) throws -> [GuestMemoryTarget] {
        try memoryRanges.enumerated().map { index, range in
            let buffer = try destination(range)
            guard buffer.baseAddress != nil, UInt64(buffer.count) == range.size else {
                throw SnapshotError.layoutMismatch(place: .range(index: index, guestAddress: range.guestAddress, size: range.size),
                                                   problem: "destination has \(hex(buffer.count)) bytes")
            }
            return GuestMemoryTarget(bytes: buffer)
        }
    }

    /// The targets of a declared layout, which must be exactly the snapshot's ranges.
    func targets(declared ranges: [(guestAddress: UInt64, bytes: UnsafeMutableRawBufferPointer)]) throws -> [GuestMemoryTarget] {
        let declared = ranges.map { MemoryRange(guestAddress: $0.guestAddress, size: UInt64($0.bytes.count)) }
        if Set(declared) != Set(memoryRanges) || declared.count != memoryRanges.count {
            let snapshot = memoryRanges.map(\.description).joined(separator: ", ")
            let given = declared.map(\.description).joined(separator: ", ")
            if let (index, range) = memoryRanges.enumerated().first(where: { !declared.contains($0.element) }) {
                throw SnapshotError.layoutMismatch(place: .range(index: index, guestAddress: range.guestAddress, size: range.size),
                                                   problem: "not in the guest's memory (snapshot: \(snapshot); guest: \(given))")
            }
            throw SnapshotError.layoutMismatch(place: .range(index: memoryRanges.count, guestAddress: 0, size: 0),
                                               problem: "the guest has ranges the snapshot lacks (snapshot: \(snapshot); guest: \(given))")
        }
        return try targets { range in ranges.first { $0.guestAddress == range.guestAddress }!.bytes }
    }

    /// Restores every chunk into `targets`; with a `mapper`, raw runs it accepts are mapped, not read.
    func restore(into targets: [GuestMemoryTarget], threads: Int, zeroFill: Bool, mapper: RawRunMapper?) throws -> RestoreStats {
        let chunks = memory.chunks
        return try run(count: chunks.count, threads: threads) { decoder, item in
            let chunk = chunks[item]
            let result = try decoder.restore(chunk, from: self.memory.io,
                                             into: targets[chunk.range].bytes.baseAddress! + Int(chunk.offsetInRange),
                                             zeroFill: zeroFill, mapper: mapper)
            return (result, chunk.recordLength)
        }
    }

    /// Verifies every memory chunk (checksum, structure, and that it decompresses) without a destination.
    /// Sections and the other files were verified when the snapshot was opened.
    @discardableResult
    public func verifyAll(threads: Int = SnapshotWriter.defaultThreads) throws -> RestoreStats {
        let chunks = memory.chunks
        return try run(count: chunks.count, threads: threads) { decoder, item in
            (try decoder.verify(chunks[item], from: self.memory.io), chunks[item].recordLength)
        }
    }

    /// Checks mapped raw runs against their checksums, reading them from the file; stops early (without an
    /// error) once `isCancelled` says so.
    func verify(_ runs: [RawRunMapper.MappedRun], threads: Int, isCancelled: @escaping @Sendable () -> Bool) throws -> RestoreStats {
        try run(count: runs.count, threads: threads) { decoder, item in
            guard !isCancelled() else { return (ChunkDecoder.Result(), 0) }
            try decoder.verify(runs[item], from: self.memory.io)
            return (ChunkDecoder.Result(dataBytes: runs[item].bytes), runs[item].bytes)
        }
    }

    /// Runs `body` for items 0..<count on `threads` threads, each with its own decoder, and sums the results
    /// (each with the file bytes it read).
    private func run(count: Int, threads: Int,
                     _ body: @escaping @Sendable (ChunkDecoder, Int) throws -> (ChunkDecoder.Result, Int)) throws -> RestoreStats {
        let start = DispatchTime.now().uptimeNanoseconds
        let layout = memory.layout, chunkSize = memory.table.chunkSize
        let totals = RestoreTotals()
        try ParallelJobs.run(count: count, threads: threads, name: "snapshot-restore") {
            let decoder = try ChunkDecoder(layout: layout, chunkSize: chunkSize)
            return { item in
                let (result, bytesRead) = try body(decoder, item)
                totals.add(result, bytesRead: bytesRead)
            }
        }
        var stats = totals.stats
        stats.chunks = memory.chunks.count
        stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return stats
    }
}

/// A destination mapping shared with the restore threads; the caller keeps it mapped during the call.
struct GuestMemoryTarget: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
}

private final class RestoreTotals: @unchecked Sendable {
    private let monitor = Monitor()
    private var value = RestoreStats()

    func add(_ result: ChunkDecoder.Result, bytesRead: Int) {
        monitor.locked {
            value.bytesRead += UInt64(bytesRead)
            value.bytesRestored += UInt64(result.dataBytes)
            value.zeroPages += UInt64(result.zeroPages)
            value.mappedRuns += result.mappedRuns
            value.mappedBytes += UInt64(result.mappedBytes)
        }
    }

    var stats: RestoreStats { monitor.locked { value } }
}
