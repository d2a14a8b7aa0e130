import Foundation
import Snapshot
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The writer never overwrites a snapshot, reports failures naming the file, and never leaves a file that
/// looks complete (nor its temporaries) behind.
final class WriterFailureTests: XCTestCase {
    var directory: URL!
    let memory = GuestBuffer(size: 1 << 20, kinds: [.random, .text, .zero], seed: 11)

    override func setUp() { directory = makeTemporaryDirectory("writer") }
    override func tearDown() { cleanUp(directory) }

    private func entries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    private func writer() throws -> SnapshotWriter {
        let w = try SnapshotWriter(directory: directory, durable: false)
        try w.writeConfig(Data("{}".utf8))
        try w.addSection(id: "vm", type: "kvm-vm", version: 1, payload: Data([1]))
        return w
    }

    func testExistingSnapshotFilesAreNotOverwritten() throws {
        for name in ["config.json", "state.bin", "memory.bin"] {
            let path = directory.appendingPathComponent(name)
            try Data("precious".utf8).write(to: path)
            let error = expectSnapshotError(name) { _ = try SnapshotWriter(directory: directory) }
            XCTAssertEqual(error, .fileExists(file: name, directory: directory.path))
            XCTAssertEqual(error?.description, "\(name): already exists in \(directory.path); refusing to overwrite a snapshot")
            XCTAssertEqual(try Data(contentsOf: path), Data("precious".utf8))
            try FileManager.default.removeItem(at: path)
        }
    }

    func testFileAppearingWhileWritingIsNotOverwritten() throws {
        let w = try writer()
        try w.writeMemory(ranges: [(0, memory.bytes)], threads: 2)
        let path = directory.appendingPathComponent("state.bin")
        try Data("someone else".utf8).write(to: path)
        XCTAssertEqual(expectSnapshotError { try w.finish() }, .fileExists(file: "state.bin", directory: directory.path))
        XCTAssertEqual(try Data(contentsOf: path), Data("someone else".utf8))
        XCTAssertEqual(entries(), ["state.bin"], "published files and temporaries are removed")
    }

    func testMissingDirectory() {
        let missing = directory.appendingPathComponent("nope")
        XCTAssertEqual(expectSnapshotError { _ = try SnapshotWriter(directory: missing) }, .directoryMissing(path: missing.path))
        let file = directory.appendingPathComponent("file")
        XCTAssertTrue(FileManager.default.createFile(atPath: file.path, contents: Data()))
        XCTAssertEqual(expectSnapshotError { _ = try SnapshotWriter(directory: file) }, .notADirectory(path: file.path))
    }

    func testDirectoryVanishingBeforeMemoryIsWritten() throws {
        let w = try writer()
        try FileManager.default.removeItem(at: directory)
        let error = expectSnapshotError { try w.writeMemory(ranges: [(0, memory.bytes)]) }
        guard case .io(file: "memory.bin", _, errno: ENOENT)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(error!.description.hasPrefix("memory.bin: create "), error!.description)
    }

    func testDirectoryVanishingBeforeFinish() throws {
        let w = try writer()
        try w.writeMemory(ranges: [(0, memory.bytes)])
        try FileManager.default.removeItem(at: directory)
        let error = expectSnapshotError { try w.finish() }
        XCTAssertNotNil(error?.file, "\(String(describing: error))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path))
    }

    /// A full disk, simulated with RLIMIT_FSIZE (writes past the limit fail with EFBIG).
    func testWriteFailureLeavesNothingBehind() throws {
        let big = GuestBuffer(size: 4 << 20, kinds: [.random], seed: 12)
        let w = try writer()
        signal(SIGXFSZ, SIG_IGN)
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        var limited = saved
        limited.rlim_cur = 256 << 10
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        let error = expectSnapshotError { try w.writeMemory(ranges: [(0x1000_0000, big.bytes)], threads: 2) }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, SIG_DFL)
        guard case .io(file: "memory.bin", _, errno: EFBIG)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertTrue(error!.description.contains("memory.bin: write of"), error!.description)
        XCTAssertEqual(entries(), [], "the partial memory file is removed")

        // The writer can try again (e.g. after space was freed) and produce a good snapshot.
        try w.writeMemory(ranges: [(0x1000_0000, big.bytes)])
        try w.finish()
        XCTAssertEqual(entries(), ["config.json", "memory.bin", "state.bin"])
        try openAndVerify(directory)
    }

    func testAbandonedWriterLeavesNothing() throws {
        do {
            let w = try writer()
            try w.writeMemory(ranges: [(0, memory.bytes)])
            XCTAssertEqual(entries().count, 1)                  // the temporary memory file, hidden
            XCTAssertTrue(entries()[0].hasPrefix("."))
        }
        XCTAssertEqual(entries(), [])
        XCTAssertNotNil(expectSnapshotError { _ = try SnapshotReader(directory: directory) })
    }

    func testMisuseIsRefused() throws {
        let w = try writer()
        XCTAssertEqual(expectSnapshotError { try w.addSection(id: "vm", type: "x", version: 1, payload: Data()) },
                       .invalidArgument("duplicate section id 'vm'"))
        XCTAssertNotNil(expectSnapshotError { try w.addSection(id: "", type: "x", version: 1, payload: Data()) })
        XCTAssertNotNil(expectSnapshotError { try w.addSection(id: String(repeating: "x", count: 256), type: "x", version: 1, payload: Data()) })
        let page = GuestBuffer(size: 8192)
        let overlap = expectSnapshotError { try w.writeMemory(ranges: [(0x1000, page.bytes), (0x2000, page.bytes)]) }
        XCTAssertEqual(overlap?.description, "memory range 1 (0x2000+0x2000): range overlaps range 0 (0x1000+0x2000)")
        XCTAssertNotNil(expectSnapshotError { try w.writeMemory(ranges: [(0, UnsafeRawBufferPointer(start: nil, count: 0))]) })
        XCTAssertNotNil(expectSnapshotError { try w.writeMemory(ranges: [(UInt64.max - 100, page.bytes)]) })
        XCTAssertNotNil(expectSnapshotError { try w.writeMemory(ranges: [(0, page.bytes)], compression: .zstd(level: 99)) })
        XCTAssertNotNil(expectSnapshotError { try w.writeMemory(ranges: [(0, page.bytes)], chunkSize: 5000) })
        try w.writeMemory(ranges: [(0, page.bytes)])
        XCTAssertEqual(expectSnapshotError { try w.writeMemory(ranges: [(0, page.bytes)]) },
                       .invalidArgument("writeMemory was already called"))
        try w.finish()
        XCTAssertNotNil(expectSnapshotError { try w.finish() })
        XCTAssertNotNil(expectSnapshotError { try w.addSection(id: "late", type: "x", version: 1, payload: Data()) })

        let noConfig = try SnapshotWriter(directory: makeTemporaryDirectory("noconfig"), durable: false)
        defer { cleanUp(noConfig.directory) }
        XCTAssertEqual(expectSnapshotError { try noConfig.finish() }, .invalidArgument("writeConfig was not called"))
    }

    func testDurableWriteSucceeds() throws {
        let w = try SnapshotWriter(directory: directory)                // fsync on
        try w.writeConfig(Data("{}".utf8))
        try w.writeMemory(ranges: [(0, memory.bytes)])
        try w.finish()
        try openAndVerify(directory)
    }
}
