import Foundation
import Snapshot
import XCTest

/// Format version 2's raw runs: incompressible runs stored after the chunk head at page-aligned file
/// offsets with their own checksums. They round-trip, sit where FORMAT.md says, and damage to them, to
/// their checksums or to the padding before them is refused, naming the chunk (and the run).
final class RawRunTests: XCTestCase {
    var fixture: SnapshotFixture!
    var original: [UInt8] = []
    var chunks: [ChunkLocation] = []

    /// 256 KiB chunks: a random one (one raw run), one with two raw runs and a compressed one, a text one
    /// (compressed), a zero one; and a range ending in a partial page of random bytes.
    static func memory() -> [(guestAddress: UInt64, memory: GuestBuffer)] {
        let mixed: [GuestBuffer.PageKind] = Array(repeating: .random, count: 8) + Array(repeating: .zero, count: 20)
            + Array(repeating: .random, count: 8) + Array(repeating: .zero, count: 20) + Array(repeating: .text, count: 8)
        let kinds = Array(repeating: GuestBuffer.PageKind.random, count: 64) + mixed
            + Array(repeating: .text, count: 64) + Array(repeating: .zero, count: 64)
        return [(0x4000_0000, GuestBuffer(size: kinds.count * 4096, kinds: kinds, seed: 11)),
                (0x1_0000_0000, GuestBuffer(size: 3 * 4096 + 100, kinds: [.random], seed: 12))]
    }

    /// Durable: whole-page raw runs go through O_DIRECT, the partial one through the page cache.
    override func setUpWithError() throws {
        fixture = try SnapshotFixture(chunkSize: 256 << 10, durable: true, ranges: Self.memory())
        original = fixture.contents("memory.bin")
        chunks = try SnapshotReader(directory: fixture.directory).memoryChunks
        XCTAssertEqual(chunks.count, 5)
    }

    override func tearDown() { cleanUp(fixture.directory) }

    /// A version-2 record as FORMAT.md describes it: head, padding, raw runs.
    struct Record {
        let head: Range<Int>
        let padding: Range<Int>
        let raw: Range<Int>
        let runCount: Int
    }

    func record(_ c: ChunkLocation) -> Record {
        let start = Int(c.fileOffset)
        func u32(_ at: Int) -> Int { Int(original[start + at]) | Int(original[start + at + 1]) << 8
            | Int(original[start + at + 2]) << 16 | Int(original[start + at + 3]) << 24 }
        let pages = (u32(16) + 4095) / 4096
        let runs = u32(20), compressed = u32(24), raw = u32(28)
        let headEnd = start + 48 + (pages + 7) / 8 + 12 * runs + compressed
        let end = start + c.recordLength
        return Record(head: start..<headEnd, padding: headEnd..<(end - raw), raw: (end - raw)..<end, runCount: runs)
    }

    func testRawRunsRoundTripAndArePageAlignedInTheFile() throws {
        XCTAssertEqual(fixture.stats.rawRuns, 4, "chunk 0: one, chunk 1: two, the partial range: one")
        let rawBytes: UInt64 = (256 + 64) * 1024 + 3 * 4096 + 100
        XCTAssertEqual(fixture.stats.rawBytes, rawBytes)
        XCTAssertEqual(try SnapshotReader(directory: fixture.directory).memorySummary.rawBytes, fixture.stats.rawBytes)
        for (original, copy) in zip(fixture.ranges, try fixture.restore()) {
            XCTAssertTrue(copy.sameBytes(as: original.memory))
        }
        let rawSizes = chunks.map { record($0).raw.count }
        XCTAssertEqual(rawSizes, [256 * 1024, 64 * 1024, 0, 0, 3 * 4096 + 100])
        for c in chunks where record(c).raw.count > 0 {
            XCTAssertEqual(record(c).raw.lowerBound % 4096, 0, "chunk \(c.index)")
            XCTAssertLessThan(record(c).padding.count, 4096)
            XCTAssertTrue(original[record(c).padding].allSatisfy { $0 == 0 })
        }
        // Raw data is the guest's bytes, unchanged.
        let chunk0 = record(chunks[0]).raw
        XCTAssertEqual(Array(original[chunk0]), Array(fixture.ranges[0].memory.bytes[0..<(256 << 10)]))
        try SnapshotReader(directory: fixture.directory).verifyAll()
    }

    func testDamagedRawRunNamesChunkAndRun() throws {
        // Chunk 1's second raw run (run 1) ends where the record ends.
        let c = chunks[1]
        for offset in [record(c).raw.upperBound - 1, record(c).raw.lowerBound + (32 << 10)] {
            var bytes = original
            bytes[offset] ^= 0x10
            fixture.replace("memory.bin", with: bytes)
            let expected = SnapshotError.checksumMismatch(
                file: "memory.bin", place: .chunkRun(index: 1, range: 0, offset: 0x40000, run: 1))
            XCTAssertEqual(expectSnapshotError { _ = try fixture.restore() }, expected)
            XCTAssertEqual(expectSnapshotError { try openAndVerify(fixture.directory) }, expected)
            XCTAssertEqual(expected.description, "memory.bin: chunk 1 (range 0 +0x40000), run 1: checksum mismatch")
        }
        var bytes = original
        bytes[record(c).raw.lowerBound] ^= 0x10
        fixture.replace("memory.bin", with: bytes)
        XCTAssertEqual(expectSnapshotError { _ = try fixture.restore() },
                       .checksumMismatch(file: "memory.bin", place: .chunkRun(index: 1, range: 0, offset: 0x40000, run: 0)))
    }

    func testDamagedHeadFieldsAndPaddingNameTheChunk() throws {
        let c = chunks[1], r = record(c)
        let place = SnapshotPlace.chunk(index: 1, range: 0, offset: 0x40000)
        // Run count, compressed bytes, raw bytes, flags, reserved, checksum; a raw run's stored checksum.
        let firstRunChecksum = r.head.lowerBound + 48 + 8 + 4
        for offset in [20, 24, 28, 32, 36, 40].map({ r.head.lowerBound + $0 }) + [firstRunChecksum] {
            var bytes = original
            bytes[offset] ^= 0x02
            fixture.replace("memory.bin", with: bytes)
            XCTAssertEqual(expectSnapshotError { _ = try fixture.restore() },
                           .checksumMismatch(file: "memory.bin", place: place), "offset \(offset - r.head.lowerBound)")
        }
        XCTAssertGreaterThan(r.padding.count, 0)
        var bytes = original
        bytes[r.padding.lowerBound] = 1
        fixture.replace("memory.bin", with: bytes)
        let error = expectSnapshotError { try openAndVerify(fixture.directory) }
        XCTAssertEqual(error, .corrupt(file: "memory.bin", place: place, problem: "padding before the raw runs is not zero"))
    }

    func testDamagedRawRunIsCaughtBeforeAnythingRuns() throws {
        // A copying restore reads raw runs straight into guest memory and checks them there: the damage is in
        // memory when the error comes, but the restore fails, so the VM never runs it.
        let c = chunks[0]
        var bytes = original
        bytes[record(c).raw.lowerBound + 5] ^= 0xFF
        fixture.replace("memory.bin", with: bytes)
        XCTAssertEqual(expectSnapshotError { _ = try fixture.restore(threads: 1) },
                       .checksumMismatch(file: "memory.bin", place: .chunkRun(index: 0, range: 0, offset: 0, run: 0)))
    }
}
