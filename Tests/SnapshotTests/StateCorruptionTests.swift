import Foundation
import Snapshot
import XCTest

/// A damaged state.bin is refused at open with an error naming state.bin and, where there is one, the
/// section — never a crash, never a silently wrong section.
final class StateCorruptionTests: XCTestCase {
    var fixture: SnapshotFixture!
    var original: [UInt8] = []

    override func setUpWithError() throws {
        fixture = try SnapshotFixture()
        original = fixture.contents("state.bin")
    }

    override func tearDown() { cleanUp(fixture.directory) }

    private func open(with bytes: [UInt8], _ what: String = "", line: UInt = #line) -> SnapshotError? {
        fixture.replace("state.bin", with: bytes)
        return expectSnapshotError(what, line: line) { _ = try SnapshotReader(directory: fixture.directory) }
    }

    private func openFlipped(at offset: Int, mask: UInt8 = 0x10, line: UInt = #line) -> SnapshotError? {
        fixture.flip("state.bin", at: offset, mask: mask)
        defer { fixture.flip("state.bin", at: offset, mask: mask) }
        return expectSnapshotError("offset \(offset)", line: line) { _ = try SnapshotReader(directory: fixture.directory) }
    }

    private func sectionRecord(_ id: String) throws -> (offset: Int, payload: Range<Int>) {
        fixture.replace("state.bin", with: original)
        let info = try XCTUnwrap(SnapshotReader(directory: fixture.directory).sections.first { $0.id == id })
        let start = Int(info.fileOffset) + 32 + info.id.utf8.count + info.type.utf8.count
        return (Int(info.fileOffset), start..<(start + info.size))
    }

    func testTruncationAtEveryOffsetIsReportedWhereItHappens() throws {
        let vcpu1 = try sectionRecord("vcpu-1")
        for length in (0..<original.count).reversed() {
            fixture.truncate("state.bin", to: length)
            guard let error = expectSnapshotError("length \(length)", { _ = try SnapshotReader(directory: fixture.directory) })
            else { continue }
            XCTAssertEqual(error.file, "state.bin", "length \(length): \(error)")
            switch length {
            case 0:
                XCTAssertEqual(error, .notSnapshotFile(file: "state.bin", found: "file is empty"))
            case 1..<32:
                guard case .truncated(_, .header, _, _) = error else { return XCTFail("length \(length): \(error)") }
            default:
                guard case .truncated = error else { return XCTFail("length \(length): \(error)") }
            }
            if vcpu1.payload.contains(length) {
                XCTAssertEqual(error.place, .section(id: "vcpu-1", type: "vcpu", version: 3), "length \(length)")
                XCTAssertTrue(error.description.hasPrefix("state.bin: truncated in section 'vcpu-1' (type vcpu, version 3) at offset 0x"),
                              error.description)
            }
        }
    }

    func testEveryFlippedByteIsDetected() {
        for offset in 0..<original.count {
            guard let error = openFlipped(at: offset) else { continue }
            XCTAssertEqual(error.file, "state.bin", "offset \(offset): \(error)")
        }
    }

    func testFlippedPayloadNamesTheSection() throws {
        let record = try sectionRecord("vcpu-1")
        var bytes = original
        bytes[record.payload.lowerBound + 5] ^= 1
        let error = open(with: bytes)
        XCTAssertEqual(error, .checksumMismatch(file: "state.bin", place: .section(id: "vcpu-1", type: "vcpu", version: 3)))
        XCTAssertEqual(error?.description, "state.bin: section 'vcpu-1' (type vcpu, version 3): checksum mismatch")
    }

    func testFlippedSectionHeaderNamesTheSectionFromTheManifest() throws {
        let record = try sectionRecord("__serial")
        for field in [4, 8, 16, 24, 33] {                       // id length, version, payload length, checksum, id
            var bytes = original
            bytes[record.offset + field] ^= 0x02
            let error = open(with: bytes, "field \(field)")
            XCTAssertEqual(error, .checksumMismatch(file: "state.bin", place: .sectionEntry(index: 3, id: "__serial")),
                           "field \(field)")
        }
        XCTAssertEqual(SnapshotError.checksumMismatch(file: "state.bin", place: .sectionEntry(index: 3, id: "__serial")).description,
                       "state.bin: section #3 ('__serial' in the manifest): checksum mismatch")
    }

    func testFlippedHeaderBytes() {
        for offset in 0..<32 {
            var bytes = original
            bytes[offset] ^= 0x01
            let error = open(with: bytes, "offset \(offset)")
            switch offset {
            case 0..<8: guard case .notSnapshotFile(file: "state.bin", _)? = error else { return XCTFail("\(offset): \(String(describing: error))") }
            // Byte 8 turns version 3 into 2, which this build reads: the header checksum catches it (default).
            case 9..<12:
                guard case .newerVersion(file: "state.bin", _, supported: SnapshotFormat.version)? = error else {
                    return XCTFail("\(offset): \(String(describing: error))")
                }
            default: XCTAssertEqual(error, .checksumMismatch(file: "state.bin", place: .header), "offset \(offset)")
            }
        }
    }

    func testChangedFormatVersion() {
        var bytes = original
        bytes[8] = 9
        XCTAssertEqual(open(with: bytes)?.description, "state.bin: format version 9 is newer than this build supports (3)")
        bytes[8] = 0
        XCTAssertEqual(open(with: bytes), .unsupportedVersion(file: "state.bin", version: 0))
    }

    func testTrailerAndManifestDamage() {
        var bytes = original
        bytes[bytes.count - 32] ^= 0xFF                          // trailer magic
        XCTAssertEqual(open(with: bytes)?.place, .trailer)
        bytes = original
        bytes[bytes.count - 40] ^= 0x01                          // inside the manifest
        XCTAssertEqual(open(with: bytes), .checksumMismatch(file: "state.bin", place: .manifest))
        bytes = original + [0]                                   // a byte appended
        XCTAssertEqual(open(with: bytes)?.place, .trailer)
    }
}
