import Foundation
import Hypervisor
import Memory
import XCTest
@testable import Virtio

/// Counts the interrupts a device raises, per queue and for config changes.
final class CountingInterrupt: VirtioInterrupt, @unchecked Sendable {
    private let lock = NSLock()
    private var queues: [Int: Int] = [:]
    private var configChanges = 0

    func signalQueue(_ index: Int) { lock.withLock { queues[index, default: 0] += 1 } }
    func signalConfigChange() { lock.withLock { configChanges += 1 } }

    func count(queue: Int = 0) -> Int { lock.withLock { queues[queue, default: 0] } }
    var configChangeCount: Int { lock.withLock { configChanges } }
}

/// The driver's side of a device under test: one `TestRing` and one kick eventfd per queue, in 16 MiB of
/// guest memory (rings from 1 MiB, buffers from 8 MiB).
final class TestDriver {
    let memory: GuestMemory
    var rings: [TestRing]
    let events: [EventFD]
    let interrupt = CountingInterrupt()
    private var nextBuffer: UInt64 = 0x80_0000

    init(queues: Int, size: UInt16 = 64) throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 16 << 20)], options: MemoryOptions())
        self.memory = memory
        rings = (0..<queues).map { TestRing(memory: memory, size: size, base: 0x10_0000 + UInt64($0) * 0x3_0000) }
        events = try (0..<queues).map { _ in try EventFD() }
    }

    func activation(features: UInt64) -> VirtioActivation {
        let eventIdx = features & VirtioFeature.ringEventIdx != 0
        let queues = rings.enumerated().map { $1.queue(eventIdx: eventIdx, index: $0) }
        return VirtioActivation(memory: memory, features: features | VirtioFeature.version1, queues: queues,
                                queueEvents: events, interrupt: interrupt)
    }

    /// Guest memory for one buffer of `length` bytes (page-aligned, never reused).
    func allocate(_ length: Int) -> UInt64 {
        let address = nextBuffer
        nextBuffer += UInt64((length + 4095) & ~4095)
        return address
    }

    /// Posts a device-writable buffer of `length` bytes on `queue`; returns its address.
    @discardableResult
    func postWritable(_ queue: Int, length: Int) throws -> UInt64 {
        let address = allocate(length)
        try rings[queue].add([(address, UInt32(length), true)])
        return address
    }

    /// Posts `bytes` as one device-readable buffer (plus an optional writable one) on `queue`.
    @discardableResult
    func postReadable(_ queue: Int, _ bytes: [UInt8], writable: Int = 0) throws -> UInt64 {
        let address = allocate(bytes.count), reply = allocate(max(writable, 1))
        try memory.write(bytes, at: address)
        var buffers: [(UInt64, UInt32, Bool)] = [(address, UInt32(bytes.count), false)]
        if writable > 0 { buffers.append((reply, UInt32(writable), true)) }
        try rings[queue].add(buffers)
        return reply
    }

    func kick(_ queue: Int) throws { try events[queue].write() }

    /// The used elements of `queue` from slot `from` on, as (head, length).
    func used(_ queue: Int, from: UInt16 = 0) throws -> [(id: UInt32, len: UInt32)] {
        let ring = rings[queue]
        let end = try ring.usedIdx()
        return try (from..<end).map { try ring.usedElement($0) }
    }

    /// The buffer address of descriptor `id` on `queue` (chains posted by this driver are one buffer
    /// or start with the one that matters).
    func bufferAddress(_ queue: Int, descriptor id: UInt32) throws -> UInt64 {
        try memory.load(UInt64.self, at: rings[queue].desc + 16 * UInt64(id))
    }
}

/// Polls `condition` for up to `timeout` seconds.
func waitUntil(_ timeout: TimeInterval = 3, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(2_000)
    }
    return try condition()
}
