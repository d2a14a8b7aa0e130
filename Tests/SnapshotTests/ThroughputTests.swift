import Foundation
import Snapshot
import XCTest

/// Prints (does not assert) write and restore throughput on 256 MiB of guest-like memory. Meaningful
/// numbers come from a release build: `swift test -c release --filter ThroughputTests`, or
/// `ch-snapshot bench` (snapshots/bench-format).
final class ThroughputTests: XCTestCase {
    func testCompressionThroughputOnGuestLikeMemory() throws {
        let size = 256 << 20
        let memory = GuestBuffer(size: size, profile: .guestLike)
        for threads in [1, 2] {
            let directory = makeTemporaryDirectory("throughput")
            defer { cleanUp(directory) }
            let writer = try SnapshotWriter(directory: directory, durable: false)
            try writer.writeConfig(Data("{}".utf8))
            let stats = try writer.writeMemory(ranges: [(0, memory.bytes)], threads: threads)
            try writer.finish()

            let reader = try SnapshotReader(directory: directory)
            let target = GuestBuffer(size: size)
            let restore = try reader.restoreMemory(into: [(0, target.buffer)], threads: threads)
            XCTAssertTrue(target.sameBytes(as: memory))
            print(String(format: "throughput: 256 MiB guest-like, zstd 1, %d thread(s): write %.0f MB/s (%.3f s), "
                         + "ratio %.2f, %llu/%llu zero pages; restore %.0f MB/s (%.3f s)",
                         threads, stats.throughput / 1e6, stats.seconds, stats.ratio, stats.zeroPages, stats.pages,
                         Double(size) / restore.seconds / 1e6, restore.seconds))
        }
    }
}
