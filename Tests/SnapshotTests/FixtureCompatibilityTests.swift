import Foundation
import Snapshot
import XCTest

/// Every committed snapshot under snapshots/fixtures/ (one per format version) must still open and verify:
/// old formats keep restoring. (The VMM tests restore them into a guest; this checks the container.)
final class FixtureCompatibilityTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("snapshots/fixtures")

    func testCommittedFixturesStillVerify() throws {
        let fixtures = ((try? FileManager.default.contentsOfDirectory(atPath: Self.root.path)) ?? [])
            .filter { $0.hasPrefix("v") }.sorted()
        guard !fixtures.isEmpty else { throw XCTSkip("no fixtures under \(Self.root.path)") }
        XCTAssertTrue(fixtures.contains("v\(SnapshotFormat.version)"), "the current format version needs a fixture")
        for name in fixtures {
            let reader = try SnapshotReader(directory: Self.root.appendingPathComponent(name))
            XCTAssertEqual("v\(reader.formatVersion)", name)
            XCTAssertFalse(reader.sections.isEmpty, name)
            XCTAssertFalse(reader.memoryRanges.isEmpty, name)
            let stats = try reader.verifyAll()
            XCTAssertEqual(stats.chunks, reader.memoryChunks.count, name)
        }
    }

    /// Version 1 keeps its own rules: raw runs inside the checksummed record, so nothing can be mapped on
    /// demand (everything is read), and a damaged record is still refused naming the chunk.
    func testVersion1RestoresOnDemandByReadingAndRefusesDamage() throws {
        let directory = makeTemporaryDirectory("v1")
        defer { cleanUp(directory) }
        for name in SnapshotFormat.fileNames {
            try FileManager.default.copyItem(at: Self.root.appendingPathComponent("v1/\(name)"),
                                             to: directory.appendingPathComponent(name))
        }
        let reader = try SnapshotReader(directory: directory)
        let copies = reader.memoryRanges.map { GuestBuffer(size: Int($0.size)) }
        let lazy = reader.memoryRanges.map { OnDemandRestoreTests.AnonymousMemory(size: Int($0.size)) }
        try reader.restoreMemory(into: zip(reader.memoryRanges, copies).map { ($0.0.guestAddress, $0.1.buffer) })
        let onDemand = try reader.restoreMemoryOnDemand(into: zip(reader.memoryRanges, lazy).map { ($0.0.guestAddress, $0.1.buffer) })
        XCTAssertEqual(onDemand.stats.mappedRuns, 0)
        for (copy, other) in zip(copies, lazy) { XCTAssertTrue(other.same(as: copy)) }

        let chunk = try XCTUnwrap(reader.memoryChunks.max { $0.recordLength < $1.recordLength })
        let memory = directory.appendingPathComponent("memory.bin")
        var bytes = try Data(contentsOf: memory)
        bytes[Int(chunk.fileOffset) + chunk.recordLength - 1] ^= 0x04
        try bytes.write(to: memory)
        XCTAssertEqual(expectSnapshotError { try openAndVerify(directory) },
                       .checksumMismatch(file: "memory.bin",
                                         place: .chunk(index: chunk.index, range: chunk.range, offset: chunk.offsetInRange)))
    }
}
