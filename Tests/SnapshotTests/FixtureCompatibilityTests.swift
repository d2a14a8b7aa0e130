import Foundation
import Snapshot
import XCTest

/// Every committed snapshot under snapshots/fixtures/ (one per format version) must still open and verify:
/// old formats keep restoring. (The VMM tests restore them into a guest; this checks the container.)
final class FixtureCompatibilityTests: XCTestCase {
    func testCommittedFixturesStillVerify() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("snapshots/fixtures")
        let fixtures = ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [])
            .filter { $0.hasPrefix("v") }.sorted()
        guard !fixtures.isEmpty else { throw XCTSkip("no fixtures under \(root.path)") }
        for name in fixtures {
            let reader = try SnapshotReader(directory: root.appendingPathComponent(name))
            XCTAssertLessThanOrEqual(reader.formatVersion, SnapshotFormat.version, name)
            XCTAssertFalse(reader.sections.isEmpty, name)
            XCTAssertFalse(reader.memoryRanges.isEmpty, name)
            let stats = try reader.verifyAll()
            XCTAssertEqual(stats.chunks, reader.memoryChunks.count, name)
        }
    }
}
