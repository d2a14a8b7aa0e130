import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a snapshot directory: `config.json`, `state.bin` (versioned sections), `memory.bin` (guest RAM).
///
/// Every file is written under a temporary name and published by `finish()`, `state.bin` last, so a
/// directory never holds a snapshot that looks complete but is not; existing snapshot files are never
/// overwritten. All methods block: call them from the VMM's own thread, not from an async task (memory is
/// compressed on dedicated threads and written with blocking I/O).
public final class SnapshotWriter {
    public let directory: URL
    /// Whether `finish()` fsyncs the files and the directory before and after publishing them.
    public let durable: Bool

    private let snapshotID: UInt64
    private let tag: String
    private var config: [UInt8]?
    private var sections: [StateFileWriter.PendingSection] = []
    private var sectionIDs = Set<String>()
    private var memory: (stats: MemoryStats, trailerChecksum: UInt64)?
    private var temporaries: [String] = []
    private var finished = false

    /// Prepares a snapshot in `directory`, which must exist and hold none of the snapshot files.
    public init(directory: URL, durable: Bool = true) throws {
        self.directory = directory
        self.durable = durable
        snapshotID = UInt64.random(in: 1...UInt64.max)
        tag = String(snapshotID, radix: 16)
        try SnapshotDirectory.checkIsDirectory(directory.path)
        try checkNoSnapshotFiles()
    }

    deinit { removeTemporaries() }

    /// The VM configuration, stored as given (the VMM's JSON).
    public func writeConfig(_ data: Data) throws {
        try checkOpen()
        config = Array(data)
    }

    /// Adds a component's state. `id` is unique in the snapshot; `version` is the component's state version.
    public func addSection(id: String, type: String, version: UInt32, payload: Data) throws {
        try checkOpen()
        try SectionName.validate(id, what: "id")
        try SectionName.validate(type, what: "type")
        guard sectionIDs.insert(id).inserted else { throw SnapshotError.invalidArgument("duplicate section id '\(id)'") }
        sections.append(.init(id: id, type: type, version: version, payload: Array(payload)))
    }

    /// Compresses and writes guest memory; the VM must stay paused until this returns. `threads` writer
    /// threads each encode and write chunks (see `MemoryFileWriter`). Call at most once; a snapshot without
    /// it has no memory ranges.
    @discardableResult
    public func writeMemory(ranges: [(guestAddress: UInt64, bytes: UnsafeRawBufferPointer)],
                            compression: MemoryCompression = .default,
                            threads: Int = SnapshotWriter.defaultThreads,
                            chunkSize: Int = SnapshotFormat.defaultChunkSize) throws -> MemoryStats {
        try checkOpen()
        guard memory == nil else { throw SnapshotError.invalidArgument("writeMemory was already called") }
        let sources = ranges.map { GuestMemorySource(guestAddress: $0.guestAddress, bytes: $0.bytes) }
        let io = try createTemporary(SnapshotFormat.memoryFileName)
        do {
            var output = try MemoryFileWriter.write(to: io, snapshotID: snapshotID, sources: sources,
                                                    compression: compression, threads: threads, chunkSize: chunkSize,
                                                    durable: durable)
            if durable {
                let start = DispatchTime.now().uptimeNanoseconds
                try io.sync()
                output.stats.seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            memory = (output.stats, output.trailerChecksum)
            return output.stats
        } catch {
            // The memory file is dropped so that the caller may retry (e.g. after freeing disk space).
            unlink(temporaryPath(SnapshotFormat.memoryFileName))
            temporaries.removeAll { $0 == SnapshotFormat.memoryFileName }
            throw error
        }
    }

    /// Writes `state.bin` and publishes the three files. After an error nothing of this snapshot remains
    /// under a final name.
    public func finish() throws {
        try checkOpen()
        guard let config else { throw SnapshotError.invalidArgument("writeConfig was not called") }
        if memory == nil { try writeMemory(ranges: []) }
        finished = true
        do {
            let configIO = try createTemporary(SnapshotFormat.configFileName)
            try configIO.write(config, at: 0)
            let state = StateFileWriter.encode(
                snapshotID: snapshotID, sections: sections,
                bindings: .init(configLength: UInt64(config.count), configChecksum: XXH64.hash(config),
                                memoryLength: memory!.stats.bytesOut, memoryTrailerChecksum: memory!.trailerChecksum,
                                createdUnixTime: UInt64(max(0, time(nil)))))
            let stateIO = try createTemporary(SnapshotFormat.stateFileName)
            try stateIO.write(state, at: 0)
            if durable {
                try configIO.sync()
                try stateIO.sync()
            }
            try publish()
            if durable { try SnapshotDirectory.sync(directory.path) }
        } catch {
            removeTemporaries()
            throw error
        }
    }

    /// Gives up: removes the temporary files. (Also done when the writer is released unfinished.)
    public func abandon() {
        finished = true
        removeTemporaries()
    }

    /// Two per CPU (at most 16): writer and restore threads spend much of their time waiting for O_DIRECT
    /// I/O, and while one waits another encodes or decodes (512 MiB of incompressible memory: snapshot
    /// 0.26 → 0.19–0.25 s, restore 0.39 → 0.31 s with 4 threads instead of 2 here; compressible memory is no
    /// slower).
    public static var defaultThreads: Int { max(1, min(16, 2 * ProcessInfo.processInfo.activeProcessorCount)) }

    // MARK: - Files

    private func checkOpen() throws {
        guard !finished else { throw SnapshotError.invalidArgument("the snapshot writer has finished") }
    }

    private func checkNoSnapshotFiles() throws {
        for name in SnapshotFormat.fileNames where SnapshotDirectory.exists(path(name)) {
            throw SnapshotError.fileExists(file: name, directory: directory.path)
        }
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    private func temporaryPath(_ name: String) -> String { path(".\(name).\(tag).partial") }

    private func createTemporary(_ name: String) throws -> SnapshotFileIO {
        let io = try SnapshotFileIO.create(path: temporaryPath(name), name: name)
        temporaries.append(name)
        return io
    }

    /// Publishes memory, config, then state: a reader needs `state.bin`, so until it appears the
    /// directory does not hold a snapshot. On failure, the files already published are removed again.
    private func publish() throws {
        try checkNoSnapshotFiles()
        var published: [String] = []
        do {
            for name in [SnapshotFormat.memoryFileName, SnapshotFormat.configFileName, SnapshotFormat.stateFileName] {
                try SnapshotDirectory.publish(temporary: temporaryPath(name), final: path(name), name: name,
                                              directory: directory.path)
                published.append(name)
            }
        } catch {
            for name in published.reversed() { unlink(path(name)) }
            throw error
        }
        temporaries = []
    }

    private func removeTemporaries() {
        for name in temporaries { unlink(temporaryPath(name)) }
        temporaries = []
    }
}
