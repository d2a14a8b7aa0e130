import Foundation
import Snapshot
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `restoreMemoryOnDemand`: raw runs are mapped from memory.bin instead of read (everything else is restored
/// and verified as in a copying restore), the guest's writes stay private, and the deferred verification
/// finds a damaged mapped run.
final class OnDemandRestoreTests: XCTestCase {
    var fixture: SnapshotFixture!

    override func setUpWithError() throws {
        fixture = try SnapshotFixture(chunkSize: 256 << 10, ranges: RawRunTests.memory())
    }

    override func tearDown() { cleanUp(fixture.directory) }

    /// Guest memory as the VMM maps it: private anonymous pages (raw runs are mapped over parts of it).
    final class AnonymousMemory {
        let buffer: UnsafeMutableRawBufferPointer

        init(size: Int) {
            let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            precondition(p != MAP_FAILED)
            buffer = UnsafeMutableRawBufferPointer(start: p, count: size)
        }

        deinit { munmap(buffer.baseAddress, buffer.count) }

        func same(as other: GuestBuffer) -> Bool { memcmp(buffer.baseAddress!, other.buffer.baseAddress!, buffer.count) == 0 }
    }

    private func restoreOnDemand(populate: Bool = false) throws -> ([AnonymousMemory], OnDemandMemory) {
        let reader = try SnapshotReader(directory: fixture.directory)
        let targets = fixture.ranges.map { AnonymousMemory(size: $0.memory.buffer.count) }
        let memory = try reader.restoreMemoryOnDemand(into: zip(fixture.ranges, targets).map { ($0.0.guestAddress, $0.1.buffer) },
                                                      populate: populate)
        return (targets, memory)
    }

    func testRawRunsAreMappedAndTheRestIsRestored() throws {
        for populate in [false, true] {
            let (targets, memory) = try restoreOnDemand(populate: populate)
            // Chunk 0's run and chunk 1's two runs are whole pages; the partial last page of range 1 is read.
            XCTAssertEqual(memory.stats.mappedRuns, 3)
            XCTAssertEqual(memory.stats.mappedBytes, UInt64((256 + 64) << 10))
            for (original, copy) in zip(fixture.ranges, targets) { XCTAssertTrue(copy.same(as: original.memory)) }
            let verified = try memory.verify(threads: 2)
            XCTAssertEqual(verified.bytesRead, UInt64((256 + 64) << 10))
        }
    }

    func testGuestWritesStayPrivate() throws {
        let (targets, _) = try restoreOnDemand()
        memset(targets[0].buffer.baseAddress!, 0x5A, 256 << 10)           // all of chunk 0's mapped run
        XCTAssertTrue(targets[0].buffer.prefix(256 << 10).allSatisfy { $0 == 0x5A })
        try SnapshotReader(directory: fixture.directory).verifyAll()
        for (original, copy) in zip(fixture.ranges, try fixture.restore()) {
            XCTAssertTrue(copy.sameBytes(as: original.memory), "the snapshot file must not change")
        }
    }

    func testDamagedMappedRunIsFoundByTheDeferredVerification() throws {
        let chunks = try SnapshotReader(directory: fixture.directory).memoryChunks
        let end = Int(chunks[1].fileOffset) + chunks[1].recordLength
        fixture.flip("memory.bin", at: end - 1, mask: 0x01)               // chunk 1, run 1
        let (targets, memory) = try restoreOnDemand()
        XCTAssertFalse(targets[0].same(as: fixture.ranges[0].memory), "mapped pages show the file's bytes")
        let error = expectSnapshotError { try memory.verify(threads: 2) }
        XCTAssertEqual(error, .checksumMismatch(file: "memory.bin", place: .chunkRun(index: 1, range: 0, offset: 0x40000, run: 1)))
        XCTAssertEqual(try memory.verify(isCancelled: { true }).bytesRead, 0, "a cancelled verification stops")
    }

    func testDamagedHeadIsRefusedBeforeAnythingIsMapped() throws {
        let chunks = try SnapshotReader(directory: fixture.directory).memoryChunks
        fixture.flip("memory.bin", at: Int(chunks[2].fileOffset) + 60, mask: 0x01)
        XCTAssertEqual(expectSnapshotError { _ = try restoreOnDemand() },
                       .checksumMismatch(file: "memory.bin", place: .chunk(index: 2, range: 0, offset: 0x80000)))
    }
}
