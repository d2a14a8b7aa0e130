import Memory
import XCTest
@testable import Virtio

/// A driver's side of a split ring in guest memory, to feed a `Virtqueue` in unit tests.
struct TestRing {
    let memory: GuestMemory
    let size: UInt16
    let desc: UInt64, avail: UInt64, used: UInt64
    var nextDesc: UInt16 = 0
    var availIdx: UInt16 = 0

    /// The ring's three parts at `base`, +64 KiB and +128 KiB (one ring per 192 KiB of test memory).
    init(memory: GuestMemory, size: UInt16, base: UInt64 = 0x10_0000) {
        self.memory = memory
        self.size = size
        desc = base
        avail = base + 0x1_0000
        used = base + 0x2_0000
    }

    func queue(eventIdx: Bool = false, indirect: Bool = true, index: Int = 0) -> Virtqueue {
        Virtqueue(index: index, size: size, descTable: desc, availRing: avail, usedRing: used, isReady: true,
                  eventIdx: eventIdx, indirect: indirect, memory: memory)
    }

    func writeDesc(table: UInt64, _ i: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) throws {
        let base = table + 16 * UInt64(i)
        try memory.store(address, at: base)
        try memory.store(length, at: base + 8)
        try memory.store(flags, at: base + 12)
        try memory.store(next, at: base + 14)
    }

    /// Adds a chain of (address, length, writable) buffers; returns its head.
    @discardableResult
    mutating func add(_ buffers: [(UInt64, UInt32, Bool)]) throws -> UInt16 {
        let head = nextDesc
        for (k, b) in buffers.enumerated() {
            let i = nextDesc
            nextDesc = (nextDesc + 1) % size
            try writeDesc(table: desc, i, address: b.0, length: b.1,
                          flags: (k < buffers.count - 1 ? 1 : 0) | (b.2 ? 2 : 0), next: nextDesc)
        }
        try publish(head)
        return head
    }

    /// Adds a chain as one descriptor pointing at an indirect table written at `table`; returns its head.
    @discardableResult
    mutating func addIndirect(_ buffers: [(UInt64, UInt32, Bool)], table: UInt64) throws -> UInt16 {
        for (k, b) in buffers.enumerated() {
            try writeDesc(table: table, UInt16(k), address: b.0, length: b.1,
                          flags: (k < buffers.count - 1 ? 1 : 0) | (b.2 ? 2 : 0), next: UInt16(k + 1))
        }
        let head = nextDesc
        nextDesc = (nextDesc + 1) % size
        try writeDesc(table: desc, head, address: table, length: UInt32(16 * buffers.count), flags: 4, next: 0)
        try publish(head)
        return head
    }

    mutating func publish(_ head: UInt16) throws {
        try memory.store(head, at: avail + 4 + 2 * UInt64(availIdx % size))
        availIdx &+= 1
        try memory.store(availIdx, at: avail + 2)
    }

    func usedIdx() throws -> UInt16 { try memory.load(UInt16.self, at: used + 2) }
    func usedElement(_ slot: UInt16) throws -> (id: UInt32, len: UInt32) {
        let base = used + 4 + 8 * UInt64(slot % size)
        return (try memory.load(UInt32.self, at: base), try memory.load(UInt32.self, at: base + 4))
    }
}

final class VirtqueueTests: XCTestCase {
    var memory: GuestMemory!

    override func setUpWithError() throws {
        memory = try GuestMemory(layout: [(base: 0, size: 16 << 20)], options: MemoryOptions())
    }

    func testPopsChainSplitIntoReadableAndWritableAndPublishesUsed() throws {
        var ring = TestRing(memory: memory, size: 8)
        let q = ring.queue()
        try q.validate()
        XCTAssertNil(try q.pop())
        let head = try ring.add([(0x20_0000, 16, false), (0x20_1000, 512, true), (0x20_2000, 1, true)])
        let chain = try XCTUnwrap(try q.pop())
        XCTAssertEqual(chain.head, head)
        XCTAssertEqual(chain.readable, [GuestBuffer(address: 0x20_0000, length: 16)])
        XCTAssertEqual(chain.writableLength, 513)
        XCTAssertNil(try q.pop())
        try q.pushUsed(head: chain.head, length: 513)
        XCTAssertEqual(try ring.usedIdx(), 1)
        XCTAssertEqual(try ring.usedElement(0).id, UInt32(head))
        XCTAssertEqual(try ring.usedElement(0).len, 513)
        XCTAssertTrue(try q.needsNotification())
        XCTAssertFalse(try q.needsNotification(), "nothing new was used")
    }

    func testFollowsIndirectTable() throws {
        var ring = TestRing(memory: memory, size: 4)
        let table: UInt64 = 0x30_0000
        try ring.writeDesc(table: table, 0, address: 0x20_0000, length: 8, flags: 1, next: 1)
        try ring.writeDesc(table: table, 1, address: 0x20_1000, length: 64, flags: 2, next: 0)
        try ring.writeDesc(table: ring.desc, 0, address: table, length: 32, flags: 4, next: 0)
        try ring.publish(0)
        let chain = try XCTUnwrap(try ring.queue().pop())
        XCTAssertEqual(chain.readableLength, 8)
        XCTAssertEqual(chain.writableLength, 64)
        XCTAssertThrowsError(try { try ring.publish(0); _ = try ring.queue(indirect: false).pop() }())
    }

    func testRejectsLoopsAndOutOfRangeBuffers() throws {
        var ring = TestRing(memory: memory, size: 4)
        try ring.writeDesc(table: ring.desc, 0, address: 0x20_0000, length: 8, flags: 1, next: 1)
        try ring.writeDesc(table: ring.desc, 1, address: 0x20_0000, length: 8, flags: 1, next: 0)
        try ring.publish(0)
        let q = ring.queue()
        XCTAssertThrowsError(try q.pop()) { XCTAssertTrue("\($0)".contains("loop"), "\($0)") }
        try ring.writeDesc(table: ring.desc, 2, address: 0xFFFF_0000, length: 8, flags: 0, next: 0)
        try ring.publish(2)
        XCTAssertThrowsError(try q.pop()) { XCTAssertTrue("\($0)".contains("not guest RAM"), "\($0)") }
        XCTAssertNil(try q.pop(), "bad chains are consumed, not retried forever")
    }

    func testEventIdxSuppressesInterruptsUntilUsedEventIsPassed() throws {
        var ring = TestRing(memory: memory, size: 8)
        let q = ring.queue(eventIdx: true)
        try memory.store(UInt16(1), at: ring.avail + 4 + 2 * 8) // used_event: interrupt when used idx passes 1
        for _ in 0..<3 { try ring.add([(0x20_0000, 4, true)]) }
        let c0 = try XCTUnwrap(try q.pop())
        try q.pushUsed(head: c0.head, length: 0)
        XCTAssertFalse(try q.needsNotification(), "used idx 1 does not pass used_event 1")
        let c1 = try XCTUnwrap(try q.pop())
        try q.pushUsed(head: c1.head, length: 0)
        XCTAssertTrue(try q.needsNotification())
        XCTAssertTrue(try q.enableNotification(), "one chain is still available")
        XCTAssertEqual(try memory.load(UInt16.self, at: ring.used + 4 + 8 * 8), 2, "avail_event = last popped")
    }

    func testDeviceWritesAreMarkedDirtyForMigration() throws {
        memory.vmmDirty.start()
        try memory.scatter([1, 2, 3], into: [GuestBuffer(address: 0x5000, length: 2), GuestBuffer(address: 0x9FFF, length: 2)])
        XCTAssertEqual(try memory.read(at: 0x9FFF, count: 1), [3])
        let bits = memory.vmmDirty.take(region: 0)
        XCTAssertEqual(bits[0], (1 << 5) | (1 << 9))
        XCTAssertEqual(memory.vmmDirty.take(region: 0)[0], 0, "taking clears")
    }
}
