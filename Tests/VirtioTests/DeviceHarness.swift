import Foundation
import Hypervisor
import Memory
import XCTest
@testable import Virtio

/// Counts the interrupts a device raises, per queue, as a transport would deliver them.
final class CountingInterrupt: VirtioInterrupt, @unchecked Sendable {
    private let lock = NSLock()
    private var signals: [Int: Int] = [:]

    func signalQueue(_ index: Int) { lock.lock(); signals[index, default: 0] += 1; lock.unlock() }
    func signalConfigChange() {}
    func count(_ queue: Int = 0) -> Int { lock.lock(); defer { lock.unlock() }; return signals[queue, default: 0] }
}

/// A device activated in 16 MiB of guest memory with its queues driven by `TestRing`s and notified
/// through real eventfds, as the transport would after DRIVER_OK.
final class DeviceHarness {
    let memory: GuestMemory
    let device: any VirtioDevice
    var rings: [TestRing]
    let events: [EventFD]
    let interrupt = CountingInterrupt()

    init(_ device: any VirtioDevice, eventIdx: Bool = false) throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 16 << 20)], options: MemoryOptions())
        self.memory = memory
        self.device = device
        // Queue k's rings sit at 0x10_0000 + k * 0x3_0000 (descriptors, available, used).
        rings = device.queueMaxSizes.indices.map { k in
            let base = 0x10_0000 + UInt64(k) * 0x3_0000
            return TestRing(memory: memory, size: 16, desc: base, avail: base + 0x1_0000, used: base + 0x2_0000)
        }
        events = try device.queueMaxSizes.map { _ in try EventFD() }
        var features = VirtioFeature.version1 | VirtioFeature.ringIndirectDesc | device.deviceFeatures
        if eventIdx { features |= VirtioFeature.ringEventIdx }
        try device.activate(VirtioActivation(memory: memory, features: features,
                                             queues: rings.enumerated().map { $1.queue(eventIdx: eventIdx, index: $0) },
                                             queueEvents: events, interrupt: interrupt))
    }

    deinit { device.reset() }

    /// Makes a chain of (address, length, device-writable) buffers available and notifies the device.
    @discardableResult
    func submit(_ buffers: [(UInt64, UInt32, Bool)], queue: Int = 0) throws -> UInt16 {
        let head = try rings[queue].add(buffers)
        try events[queue].write()
        return head
    }

    /// Waits until the device used `count` chains in all on `queue`; returns the last used element.
    @discardableResult
    func waitUsed(_ count: UInt16, queue: Int = 0, file: StaticString = #filePath, line: UInt = #line) throws -> (id: UInt32, len: UInt32) {
        let deadline = Date().addingTimeInterval(5)
        while try rings[queue].usedIdx() < count && Date() < deadline { usleep(500) }
        XCTAssertEqual(try rings[queue].usedIdx(), count, "used chains", file: file, line: line)
        return try rings[queue].usedElement(count &- 1)
    }
}
