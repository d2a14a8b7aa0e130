import Foundation
import XCTest
@testable import Virtio

/// virtio-blk with several requests in flight on its I/O threads: completion, pause and reset drains,
/// FLUSH ordering. A `GatedDisk` holds the I/O at the image until the test opens it.
final class BlockInFlightTests: XCTestCase {
    private var path: String!
    private var gate: GatedDisk!
    private var blk: VirtioBlock!
    private var h: DeviceHarness!

    private static let sectorsPerRequest: UInt64 = 8

    override func setUpWithError() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("virtio-blk-\(UUID().uuidString).raw").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        XCTAssertEqual(truncate(path, 1 << 20), 0)
        blk = try VirtioBlock(BlockDeviceOptions(path: path), ioThreads: VirtioBlock.maxIOThreads) { disk in
            let gated = GatedDisk(disk)
            gate = gated
            return gated
        }
        h = try DeviceHarness(blk)
    }

    override func tearDownWithError() throws {
        gate.open()
        h = nil
        blk = nil
        try FileManager.default.removeItem(atPath: path)
    }

    private func pattern(_ k: Int) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ k &* 31) } }

    private func statusAddress(_ k: Int) -> UInt64 { 0x21_0000 + UInt64(k) }
    private func dataAddress(_ k: Int) -> UInt64 { 0x30_0000 + 0x1000 * UInt64(k) }

    /// Makes request `k` available as one indirect descriptor (so 16 fit the harness's ring): 4 KiB of
    /// data at sector 8k, or none for a flush.
    private func post(_ k: Int, type: BlockRequestType) throws {
        let header = 0x20_0000 + 16 * UInt64(k)
        try h.memory.store(type.rawValue, at: header)
        try h.memory.store(UInt32(0), at: header + 4)
        try h.memory.store(Self.sectorsPerRequest * UInt64(k), at: header + 8)
        try h.memory.store(UInt8(0xFF), at: statusAddress(k))
        var buffers: [(UInt64, UInt32, Bool)] = [(header, 16, false)]
        if type == .read || type == .write { buffers.append((dataAddress(k), 4096, type == .read)) }
        buffers.append((statusAddress(k), 1, true))
        try h.rings[0].addIndirect(buffers, table: 0x50_0000 + 0x100 * UInt64(k))
    }

    private func status(_ k: Int) throws -> UInt8 { try h.memory.load(UInt8.self, at: statusAddress(k)) }

    /// Runs `body` on a thread of its own; the semaphore is signalled when it returned.
    private func inBackground(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            body()
            done.signal()
        }
        return done
    }

    func testManyRequestsInFlightCompleteWithTheirOwnData() throws {
        let count = 12
        for k in 0..<count {
            try h.memory.write(pattern(k), at: dataAddress(k))
            try post(k, type: .write)
        }
        try h.driver.kick(0)
        XCTAssertTrue(gate.waitHeld(count), "all \(count) writes are in flight at once")
        XCTAssertEqual(try h.rings[0].usedIdx(), 0)
        gate.open()
        try h.waitUsed(UInt16(count))
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        for k in 0..<count {
            XCTAssertEqual(try status(k), 0)
            XCTAssertEqual(Array(file[4096 * k..<4096 * (k + 1)]), pattern(k), "request \(k)")
            try h.memory.write([UInt8](repeating: 0, count: 4096), at: dataAddress(k))
            try post(k, type: .read)
        }
        try h.driver.kick(0)
        try h.waitUsed(UInt16(2 * count))
        for k in 0..<count {
            XCTAssertEqual(try status(k), 0)
            XCTAssertEqual(try h.memory.read(at: dataAddress(k), count: 4096), pattern(k), "request \(k)")
        }
        let used = try h.driver.used(0)
        XCTAssertEqual(Set(used[count...].map(\.len)), [4097], "reads return data and status")
        XCTAssertEqual(blk.counters, ["read_bytes": 4096 * 12, "write_bytes": 4096 * 12, "read_ops": 12, "write_ops": 12])
    }

    func testPauseReturnsOnlyOnceTheRequestsInFlightAreUsed() throws {
        for k in 0..<3 { try post(k, type: .write) }
        try h.driver.kick(0)
        XCTAssertTrue(gate.waitHeld(3))
        let paused = inBackground { [blk] in blk!.pause() }
        XCTAssertEqual(paused.wait(timeout: .now() + 0.2), .timedOut, "pause waits for the I/O")
        gate.open()
        XCTAssertEqual(paused.wait(timeout: .now() + 5), .success)
        // The device thread is parked: a completion left behind would never be used until resume.
        XCTAssertEqual(try h.rings[0].usedIdx(), 3, "every request was used when pause returned")
        try post(3, type: .read)
        try h.driver.kick(0)
        usleep(50_000)
        XCTAssertEqual(try h.rings[0].usedIdx(), 3, "nothing is started while paused")
        blk.resume()
        try h.waitUsed(4)
    }

    func testFlushWaitsForTheWritesPoppedBeforeItButNotForReads() throws {
        try post(0, type: .read)
        try post(1, type: .flush)
        try h.driver.kick(0)
        XCTAssertTrue(gate.waitHeld(2), "a read in flight does not hold a flush back")
        gate.open()
        try h.waitUsed(2)

        gate.close()
        try post(2, type: .write)
        try post(3, type: .flush)
        try h.driver.kick(0)
        XCTAssertTrue(gate.waitHeld(1))
        usleep(100_000)
        XCTAssertEqual(gate.log.last, "write", "the flush has not started")
        XCTAssertEqual(try h.rings[0].usedIdx(), 2)
        gate.open()
        try h.waitUsed(4)
        XCTAssertEqual(gate.log.suffix(4), ["write", "write done", "flush", "flush done"])
        XCTAssertEqual(try status(3), 0)
    }

    func testResetWaitsForTheIOInFlightAndReturnsNothingAfterwards() throws {
        try h.memory.write(pattern(5), at: dataAddress(0))
        try post(0, type: .write)
        try h.driver.kick(0)
        XCTAssertTrue(gate.waitHeld(1))
        let reset = inBackground { [blk] in blk!.reset() }
        XCTAssertEqual(reset.wait(timeout: .now() + 0.2), .timedOut, "reset waits for the I/O")
        gate.open()
        XCTAssertEqual(reset.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(gate.log, ["write", "write done"])
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))[0..<4096]), pattern(5), "the write finished")
        XCTAssertEqual(try h.rings[0].usedIdx(), 0, "a reset device returns nothing")
    }
}
