import Foundation
import Snapshot
import XCTest

/// A damaged memory.bin: truncation and damage to the fixed parts are refused when the snapshot is opened;
/// a damaged chunk is refused by restore (before the chunk is written to guest memory) and by verifyAll,
/// naming the chunk.
final class MemoryCorruptionTests: XCTestCase {
    var fixture: SnapshotFixture!
    var original: [UInt8] = []
    var chunks: [ChunkLocation] = []

    override func setUpWithError() throws {
        fixture = try SnapshotFixture()
        original = fixture.contents("memory.bin")
        chunks = try SnapshotReader(directory: fixture.directory).memoryChunks
        XCTAssertGreaterThan(chunks.count, 20)
    }

    override func tearDown() { cleanUp(fixture.directory) }

    private func openAndRestore(with bytes: [UInt8], _ what: String = "", line: UInt = #line) -> SnapshotError? {
        fixture.replace("memory.bin", with: bytes)
        return expectSnapshotError(what, line: line) { _ = try fixture.restore() }
    }

    private func chunkPlace(_ c: ChunkLocation) -> SnapshotPlace { .chunk(index: c.index, range: c.range, offset: c.offsetInRange) }

    func testTruncationIsReportedInTheRightPlace() {
        var lengths = Set(stride(from: 0, to: original.count, by: 61))
        for c in chunks { lengths.formUnion([Int(c.fileOffset), Int(c.fileOffset) + 1, Int(c.fileOffset) + 40,
                                              Int(c.fileOffset) + c.recordLength - 1]) }
        lengths.formUnion([1, 7, 8, 31, 32, 33, original.count - 64, original.count - 1])
        let indexStart = Int(chunks.last!.fileOffset) + chunks.last!.recordLength
        for length in lengths.sorted().reversed() {
            fixture.truncate("memory.bin", to: length)
            guard let error = expectSnapshotError("length \(length)", { _ = try fixture.restore() }) else { continue }
            XCTAssertEqual(error.file, "memory.bin", "length \(length): \(error)")
            if length == 0 {
                XCTAssertEqual(error, .notSnapshotFile(file: "memory.bin", found: "file is empty"))
                continue
            }
            guard case let .truncated(_, place, _, fileSize) = error else { XCTFail("length \(length): \(error)"); continue }
            XCTAssertEqual(fileSize, UInt64(length))
            if let c = chunks.first(where: { Int($0.fileOffset) <= length && length < Int($0.fileOffset) + $0.recordLength }) {
                XCTAssertEqual(place, chunkPlace(c), "length \(length)")
                XCTAssertTrue(error.description.hasPrefix("memory.bin: truncated in chunk \(c.index) (range \(c.range) +"),
                              error.description)
            } else if length >= indexStart {
                XCTAssertTrue(place == .index || place == .trailer, "length \(length): \(error)")
            } else if length < 32 {
                XCTAssertEqual(place, .header, "length \(length)")
            }
        }
    }

    func testFlippedChunkHeaderAndDataNameTheChunk() throws {
        for c in [chunks[0], chunks[7], chunks[chunks.count - 1]] {
            for delta in [0, 4, 8, 16, 20, 24, 32, 40, c.recordLength / 2, c.recordLength - 1] {
                var bytes = original
                bytes[Int(c.fileOffset) + delta] ^= 0x40
                let error = openAndRestore(with: bytes, "chunk \(c.index) +\(delta)")
                if delta == 0 {
                    XCTAssertEqual(error, .corrupt(file: "memory.bin", place: chunkPlace(c), problem: "bad chunk magic at \(hex(c.fileOffset))"))
                } else {
                    XCTAssertEqual(error, .checksumMismatch(file: "memory.bin", place: chunkPlace(c)), "chunk \(c.index) +\(delta)")
                }
                let verifyError = expectSnapshotError { try openAndVerify(fixture.directory) }
                XCTAssertEqual(verifyError, error)
            }
        }
        XCTAssertEqual(SnapshotError.checksumMismatch(file: "memory.bin", place: chunkPlace(chunks[17])).description,
                       "memory.bin: chunk 17 (range 1 +0x70000): checksum mismatch")
    }

    func testDamagedChunkIsNotWrittenToGuestMemory() throws {
        let c = chunks[3]
        var bytes = original
        bytes[Int(c.fileOffset) + c.recordLength - 1] ^= 0x01
        fixture.replace("memory.bin", with: bytes)
        let reader = try SnapshotReader(directory: fixture.directory)
        let targets = fixture.ranges.map { GuestBuffer(size: $0.memory.buffer.count) }
        for t in targets { t.fill(0xEE) }
        XCTAssertNotNil(expectSnapshotError {
            try reader.restoreMemory(into: zip(fixture.ranges, targets).map { ($0.0.guestAddress, $0.1.buffer) }, threads: 1)
        })
        let start = Int(c.offsetInRange)
        XCTAssertTrue(targets[c.range].allBytes(0xEE, in: start..<(start + c.length)))
    }

    func testSampledFlippedBytesAreAllDetected() {
        for offset in stride(from: 3, to: original.count, by: max(1, original.count / 200)) {
            fixture.flip("memory.bin", at: offset, mask: 0x08)
            let error = expectSnapshotError("offset \(offset)") { try openAndVerify(fixture.directory) }
            XCTAssertEqual(error?.file, "memory.bin", "offset \(offset)")
            fixture.flip("memory.bin", at: offset, mask: 0x08)
        }
    }

    func testFixedPartsAreCheckedAtOpen() {
        var bytes = original
        bytes[8] = 9
        XCTAssertEqual(openAndRestore(with: bytes)?.description, "memory.bin: format version 9 is newer than this build supports (3)")
        bytes = original
        bytes[32 + 20] ^= 1                                       // range table
        XCTAssertEqual(openAndRestore(with: bytes), .checksumMismatch(file: "memory.bin", place: .rangeTable))
        bytes = original
        bytes[bytes.count - 70] ^= 1                              // chunk index
        XCTAssertEqual(openAndRestore(with: bytes), .checksumMismatch(file: "memory.bin", place: .trailer))
        bytes = original
        bytes[bytes.count - 64] ^= 1                              // trailer magic
        XCTAssertEqual(openAndRestore(with: bytes)?.place, .trailer)
        for offset in 12..<32 {                                   // header fields after the version
            bytes = original
            bytes[offset] ^= 0x80
            XCTAssertEqual(openAndRestore(with: bytes), .checksumMismatch(file: "memory.bin", place: .header), "offset \(offset)")
        }
    }
}
