import Foundation
import Hypervisor
import Memory
import XCTest
@testable import Virtio

/// A device activated in 16 MiB of guest memory with its queues driven by `TestRing`s and notified
/// through real eventfds, as the transport would after DRIVER_OK.
final class DeviceHarness {
    let device: any VirtioDevice
    let driver: TestDriver
    var memory: GuestMemory { driver.memory }
    var rings: [TestRing] {
        get { driver.rings }
        set { driver.rings = newValue }
    }
    var events: [EventFD] { driver.events }
    var interrupt: CountingInterrupt { driver.interrupt }

    init(_ device: any VirtioDevice, eventIdx: Bool = false) throws {
        self.device = device
        driver = try TestDriver(queues: device.queueMaxSizes.count, size: 16)
        var features = VirtioFeature.ringIndirectDesc | device.deviceFeatures
        if eventIdx { features |= VirtioFeature.ringEventIdx }
        try device.activate(driver.activation(features: features))
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
