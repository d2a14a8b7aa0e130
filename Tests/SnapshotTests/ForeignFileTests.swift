import Foundation
import Snapshot
import XCTest

/// Files that are not (this snapshot's) snapshot files: random bytes, empty, JSON, swapped, missing.
final class ForeignFileTests: XCTestCase {
    var fixture: SnapshotFixture!
    var directories: [URL] = []

    override func setUpWithError() throws {
        fixture = try SnapshotFixture()
        directories = [fixture.directory]
    }

    override func tearDown() { directories.forEach(cleanUp) }

    private func open(line: UInt = #line) -> SnapshotError? {
        expectSnapshotError(line: line) { try openAndVerify(fixture.directory) }
    }

    func testForeignContentInEachBinaryFile() {
        var rng = TestRNG(5)
        let random = (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let json = Array(#"{"cpus": {"boot_vcpus": 2}, "memory": {"size": 536870912}}"#.utf8)
        for name in ["state.bin", "memory.bin"] {
            let saved = fixture.contents(name)
            for (what, bytes) in [("random", random), ("empty", []), ("json", json), ("short", [0x7B])] {
                fixture.replace(name, with: bytes)
                let error = open()
                guard case .notSnapshotFile(file: name, let found)? = error else {
                    XCTFail("\(name) \(what): \(String(describing: error))")
                    continue
                }
                if what == "json" { XCTAssertTrue(found.contains("{\"cpus\""), found) }
            }
            fixture.replace(name, with: saved)
        }
        XCTAssertEqual(SnapshotError.notSnapshotFile(file: "state.bin", found: "file is empty").description,
                       "state.bin: not a snapshot file (file is empty)")
    }

    func testSwappedFilesAreRecognised() {
        let state = fixture.contents("state.bin"), memory = fixture.contents("memory.bin")
        fixture.replace("state.bin", with: memory)
        fixture.replace("memory.bin", with: state)
        XCTAssertEqual(open(), .notSnapshotFile(file: "state.bin", found: "it is a snapshot memory file (memory.bin)"))
    }

    func testMemoryFileOfAnotherSnapshot() throws {
        let other = try SnapshotFixture()
        directories.append(other.directory)
        fixture.replace("memory.bin", with: other.contents("memory.bin"))
        guard case .mismatch(file: "memory.bin", let problem)? = open() else { return XCTFail() }
        XCTAssertTrue(problem.hasPrefix("belongs to another snapshot"), problem)
    }

    func testEditedOrTruncatedConfig() {
        var config = fixture.contents("config.json")
        config[3] = UInt8(ascii: "X")
        fixture.replace("config.json", with: config)
        guard case .mismatch(file: "config.json", _)? = open() else { return XCTFail() }
        fixture.replace("config.json", with: Array(config.prefix(10)))
        guard case .mismatch(file: "config.json", _)? = open() else { return XCTFail() }
    }

    func testMissingFilesAndDirectory() throws {
        for name in ["memory.bin", "config.json", "state.bin"] {
            try FileManager.default.removeItem(at: fixture.url(name))
            XCTAssertEqual(open(), .fileMissing(file: name, directory: fixture.directory.path))
        }
        try FileManager.default.removeItem(at: fixture.directory)
        XCTAssertEqual(open(), .directoryMissing(path: fixture.directory.path))
    }

    func testDirectoryInsteadOfFile() throws {
        try FileManager.default.removeItem(at: fixture.url("state.bin"))
        try FileManager.default.createDirectory(at: fixture.url("state.bin"), withIntermediateDirectories: false)
        XCTAssertNotNil(open()?.file)
    }
}
