import Hypervisor
import Memory
import Pci
import XCTest
@testable import Virtio

/// A device that records what the transport does to it.
final class ProbeDevice: VirtioDevice, @unchecked Sendable {
    var activations: [VirtioActivation] = []
    var resets = 0, pauses = 0, resumes = 0
    var configBytes: [UInt8] = [1, 2, 3, 4]
    var deviceType: VirtioDeviceType { .rng }
    var queueMaxSizes: [UInt16] { [256, 64] }
    var deviceFeatures: UInt64 { 1 << 5 }
    func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for k in 0..<data.count { data[k] = Int(offset) + k < configBytes.count ? configBytes[Int(offset) + k] : 0 }
    }
    func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer) {}
    func activate(_ activation: VirtioActivation) throws { activations.append(activation) }
    func reset() { resets += 1 }
    func pause() { pauses += 1 }
    func resume() { resumes += 1 }
    var counters: [String: UInt64] { [:] }
    var deviceStateVersion: UInt32 { 1 }
    func saveDeviceState() throws -> Data { Data("probe".utf8) }
    func restoreDeviceState(_ data: Data, version: UInt32) throws {
        guard data == Data("probe".utf8) else { throw VirtioError.badRequest("wrong state") }
    }
}

final class RecordingIoEvents: IoEventRegistrar, @unchecked Sendable {
    var registered: [UInt64] = []
    func register(_ event: EventFD, address: UInt64, length: UInt32) throws { registered.append(address) }
    func unregister(_ event: EventFD, address: UInt64, length: UInt32) { registered.removeAll { $0 == address } }
}

final class RecordingMsi: MsiVectors, @unchecked Sendable {
    var messages: [Int: MsiMessage] = [:]
    var triggered: [Int] = []
    func update(vector: Int, message: MsiMessage) { messages[vector] = message }
    func trigger(vector: Int) { triggered.append(vector) }
}

final class VirtioPciDeviceTests: XCTestCase {
    let bar: UInt64 = 0xC000_0000

    func write(_ t: VirtioPciDevice, _ offset: UInt64, _ value: UInt64, size: Int) {
        var v = value
        withUnsafeBytes(of: &v) { t.writeBar(0, offset: offset, data: UnsafeRawBufferPointer(rebasing: $0.prefix(size))) }
    }

    func read(_ t: VirtioPciDevice, _ offset: UInt64, size: Int) -> UInt64 {
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { t.readBar(0, offset: offset, data: UnsafeMutableRawBufferPointer(rebasing: $0.prefix(size))) }
        return v
    }

    /// The Linux driver's sequence: reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK.
    func bringUp(_ t: VirtioPciDevice, features: UInt64) {
        write(t, 0x14, 0, size: 1)
        write(t, 0x14, 3, size: 1)
        write(t, 0x08, 0, size: 4); write(t, 0x0C, features & 0xFFFF_FFFF, size: 4)
        write(t, 0x08, 1, size: 4); write(t, 0x0C, features >> 32, size: 4)
        write(t, 0x14, 11, size: 1)
        write(t, 0x16, 0, size: 2)
        write(t, 0x18, 128, size: 2)
        write(t, 0x1A, 1, size: 2)
        write(t, 0x20, 0x10_0000, size: 8)
        write(t, 0x28, 0x10_1000, size: 8)
        write(t, 0x30, 0x10_2000, size: 8)
        write(t, 0x1C, 1, size: 2)
        write(t, 0x14, 15, size: 1)
    }

    func testNegotiationQueueSetupActivationNotifyAndInterrupt() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 4 << 20)], options: MemoryOptions())
        let probe = ProbeDevice(), io = RecordingIoEvents(), msi = RecordingMsi()
        let t = try VirtioPciDevice(name: "probe", device: probe, memory: memory, barAddress: bar, vectors: msi, ioEvents: io)
        XCTAssertEqual(t.readConfig(register: 0), 0x1044_1AF4, "modern virtio id 0x1040 + type 4")
        XCTAssertEqual(io.registered, [bar + 0x3000, bar + 0x3004], "one notify address per queue")
        write(t, 0x00, 1, size: 4)
        XCTAssertEqual(read(t, 0x04, size: 4), 1, "VERSION_1 in the high word")
        write(t, 0x00, 0, size: 4)
        XCTAssertEqual(read(t, 0x04, size: 4), 1 << 5 | 1 << 28 | 1 << 29, "device bits + indirect + event idx")
        XCTAssertEqual(read(t, 0x12, size: 2), 2, "num_queues")
        XCTAssertEqual(read(t, 0x2001, size: 2), 0x0302, "device config window")

        // Features we never offered: FEATURES_OK does not stick.
        write(t, 0x08, 0, size: 4); write(t, 0x0C, 1 << 7, size: 4)
        write(t, 0x08, 1, size: 4); write(t, 0x0C, 1, size: 4)
        write(t, 0x14, 11, size: 1)
        XCTAssertEqual(read(t, 0x14, size: 1) & 8, 0)

        bringUp(t, features: VirtioFeature.version1 | VirtioFeature.ringEventIdx | 1 << 5)
        XCTAssertEqual(read(t, 0x14, size: 1), 15)
        let activation = try XCTUnwrap(probe.activations.first)
        XCTAssertEqual(activation.queues.count, 2)
        XCTAssertTrue(activation.queues[0].isReady)
        XCTAssertTrue(activation.queues[0].eventIdx)
        XCTAssertEqual(activation.queues[0].size, 128)
        XCTAssertFalse(activation.queues[1].isReady)

        // A notify write that did not go through the ioeventfd still reaches the queue's eventfd.
        write(t, 0x3000, 0, size: 2)
        XCTAssertEqual(try activation.queueEvents[0].read(), 1)

        // MSI-X: vector 1 programmed, enabled and unmasked → the queue interrupt is sent.
        write(t, 0x8000 + 16, 0xFEE0_0000, size: 4)
        write(t, 0x8000 + 24, 0x31, size: 4)
        write(t, 0x8000 + 28, 0, size: 4)
        t.signalQueue(0)
        XCTAssertTrue(msi.triggered.isEmpty, "MSI-X not enabled yet: pending")
        var control: UInt16 = 0x8000
        let capOffset = Int(t.readConfig(register: 0x34 / 4) & 0xFF)
        _ = withUnsafeBytes(of: &control) { t.writeConfig(offset: capOffset + 2, data: $0) }
        XCTAssertEqual(msi.triggered, [1])
        XCTAssertEqual(msi.messages[1], MsiMessage(address: 0xFEE0_0000, data: 0x31))
        XCTAssertEqual(read(t, 0x1000, size: 1), 1, "ISR queue bit, cleared on read")
        XCTAssertEqual(read(t, 0x1000, size: 1), 0)

        // Reset stops the device and forgets the configuration.
        write(t, 0x14, 0, size: 1)
        XCTAssertEqual(probe.resets, 2)
        XCTAssertEqual(read(t, 0x14, size: 1), 0)
        XCTAssertFalse(t.isActive)
    }

    func testSaveAndRestoreIntoAFreshDeviceReactivatesWithRingPositionsAndMovedBar() throws {
        let memory = try GuestMemory(layout: [(base: 0, size: 4 << 20)], options: MemoryOptions())
        let probe = ProbeDevice()
        let t = try VirtioPciDevice(name: "probe", device: probe, memory: memory, barAddress: bar,
                                    vectors: RecordingMsi(), ioEvents: RecordingIoEvents())
        // The guest moves the BAR, then drives the device.
        var low: UInt32 = 0xD000_0000
        _ = withUnsafeBytes(of: &low) { t.writeConfig(offset: 0x10, data: $0) }
        var high: UInt32 = 0
        let move = withUnsafeBytes(of: &high) { t.writeConfig(offset: 0x14, data: $0) }
        XCTAssertEqual(move?.to, 0xD000_0000)
        bringUp(t, features: VirtioFeature.version1)
        let saved = t.saveState()
        XCTAssertEqual(saved.rings?.count, 2)

        let probe2 = ProbeDevice(), io2 = RecordingIoEvents(), msi2 = RecordingMsi()
        let t2 = try VirtioPciDevice(name: "probe", device: probe2, memory: memory, barAddress: bar, vectors: msi2, ioEvents: io2)
        let moves = LockedMoves()
        t2.remap = { move in moves.append(move); t2.barMoved(move) }
        try t2.restoreState(saved)
        XCTAssertEqual(moves.all.map(\.to), [0xD000_0000])
        XCTAssertEqual(io2.registered, [0xD000_3000, 0xD000_3004])
        XCTAssertEqual(probe2.activations.count, 1)
        XCTAssertEqual(probe2.pauses, 1, "restored paused: the VM's resume re-kicks the queues")
        XCTAssertEqual(t2.saveState(), saved)
        XCTAssertEqual(msi2.messages.count, 3, "every MSI-X message re-announced to the new VM's routes")

        var wrong = saved
        wrong.deviceType = 2
        XCTAssertThrowsError(try t2.restoreState(wrong)) { XCTAssertTrue("\($0)".contains("type 2"), "\($0)") }
    }
}

final class LockedMoves: @unchecked Sendable {
    private let lock = NSLock()
    private var moves: [PciBarMove] = []
    func append(_ m: PciBarMove) { lock.lock(); moves.append(m); lock.unlock() }
    var all: [PciBarMove] { lock.lock(); defer { lock.unlock() }; return moves }
}
