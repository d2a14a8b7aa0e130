import Devices
import XCTest
@testable import Pci

final class RecordingVectors: MsiVectors, @unchecked Sendable {
    var updates: [(Int, MsiMessage)] = []
    var triggers: [Int] = []
    func update(vector: Int, message: MsiMessage) { updates.append((vector, message)) }
    func trigger(vector: Int) { triggers.append(vector) }
}

final class TestDevice: PciDevice, @unchecked Sendable {
    var config = PciConfiguration(vendor: 0x1AF4, device: 0x1042, classCode: 0x01, subclass: 0x00)
    var moves: [PciBarMove] = []
    var lastWrite: (Int, UInt64, [UInt8])?
    init(barAddress: UInt64) {
        config.addBar(index: 0, size: 0x8_0000, kind: .memory64, prefetchable: false, address: barAddress)
    }
    func readConfig(register: Int) -> UInt32 { config.read(register: register) }
    func writeConfig(offset: Int, data: UnsafeRawBufferPointer) -> PciBarMove? { config.write(offset: offset, data: data) }
    var bars: [PciBar] { config.bars }
    func readBar(_ index: Int, offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for k in 0..<data.count { data[k] = 0xAB }
    }
    func writeBar(_ index: Int, offset: UInt64, data: UnsafeRawBufferPointer) { lastWrite = (index, offset, Array(data)) }
    func barMoved(_ move: PciBarMove) { moves.append(move) }
}

final class PciTests: XCTestCase {
    func cfg(_ io: PciConfigIO, slot: Int, register: Int) -> UInt32 {
        var address = UInt32(0x8000_0000) | UInt32(slot) << 11 | UInt32(register) << 2
        withUnsafeBytes(of: &address) { io.write(offset: 0, data: $0) }
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { io.read(offset: 4, data: $0) }
        return value
    }

    func cfgWrite(_ io: PciConfigIO, slot: Int, register: Int, _ value: UInt32) {
        var address = UInt32(0x8000_0000) | UInt32(slot) << 11 | UInt32(register) << 2
        withUnsafeBytes(of: &address) { io.write(offset: 0, data: $0) }
        var v = value
        withUnsafeBytes(of: &v) { io.write(offset: 4, data: $0) }
    }

    func testEnumerationSizingAndReprogrammingOfA64BitBar() throws {
        let mmio = Bus()
        let bus = PciBus(mmio: mmio)
        let io = PciConfigIO(bus: bus)
        let device = TestDevice(barAddress: 0xC000_0000)
        XCTAssertEqual(try bus.add(device, name: "test"), 1)
        XCTAssertEqual(cfg(io, slot: 0, register: 0), 0x0D57_8086, "host bridge")
        XCTAssertEqual(cfg(io, slot: 1, register: 0), 0x1042_1AF4)
        XCTAssertEqual(cfg(io, slot: 2, register: 0), 0xFFFF_FFFF, "empty slot")
        XCTAssertEqual(cfg(io, slot: 1, register: 4), 0xC000_0004, "64-bit memory BAR at its address")
        // Sizing as Linux does it: all-ones, read the mask, restore; the BAR must not move.
        cfgWrite(io, slot: 1, register: 4, 0xFFFF_FFFF)
        XCTAssertEqual(cfg(io, slot: 1, register: 4), 0xFFF8_0004)
        cfgWrite(io, slot: 1, register: 4, 0xC000_0000)
        cfgWrite(io, slot: 1, register: 5, 0xFFFF_FFFF)
        XCTAssertEqual(cfg(io, slot: 1, register: 5), 0xFFFF_FFFF)
        cfgWrite(io, slot: 1, register: 5, 0)
        XCTAssertTrue(device.moves.isEmpty)
        // Reprogramming moves the MMIO mapping.
        cfgWrite(io, slot: 1, register: 4, 0xD000_0000)
        cfgWrite(io, slot: 1, register: 5, 0x1)
        XCTAssertEqual(device.moves, [PciBarMove(index: 0, from: 0xC000_0000, to: 0x1_D000_0000, size: 0x8_0000)])
        XCTAssertNil(mmio.resolve(0xC000_0000))
        let (region, offset) = try XCTUnwrap(mmio.resolve(0x1_D000_0010))
        XCTAssertEqual(offset, 0x10)
        var byte: [UInt8] = [7]
        byte.withUnsafeBytes { region.write(offset: offset, data: $0) }
        XCTAssertEqual(device.lastWrite?.1, 0x10)
    }

    func testReadOnlyFieldsStayReadOnlyAndEcamReachesTheSameSpace() {
        let bus = PciBus(mmio: Bus())
        let device = TestDevice(barAddress: 0xC000_0000)
        _ = try? bus.add(device, name: "test")
        let ecam = PciConfigMMIO(bus: bus)
        var id: UInt32 = 0xFFFF_FFFF
        withUnsafeBytes(of: &id) { ecam.write(offset: 1 << 15, data: $0) }
        var back: UInt32 = 0
        withUnsafeMutableBytes(of: &back) { ecam.read(offset: 1 << 15, data: $0) }
        XCTAssertEqual(back, 0x1042_1AF4)
        var command: UInt16 = 0x0006
        withUnsafeBytes(of: &command) { ecam.write(offset: 1 << 15 | 4, data: $0) }
        XCTAssertEqual(device.config.read(register: 1) & 0xFFFF, 0x0006)
        var outside: UInt32 = 0
        withUnsafeMutableBytes(of: &outside) { ecam.read(offset: 1 << 20, data: $0) }
        XCTAssertEqual(outside, 0xFFFF_FFFF, "bus 1 does not exist")
    }

    func testCapabilityListIsChained() {
        var config = PciConfiguration(vendor: 1, device: 2, classCode: 0xFF, subclass: 0)
        let a = config.addCapability(id: 0x09, body: [1, 2, 3])
        let b = config.addCapability(id: 0x11, body: [0, 0])
        XCTAssertEqual(Int(config.byte(0x34)), a)
        XCTAssertEqual(Int(config.byte(a + 1)), b)
        XCTAssertEqual(config.byte(b), 0x11)
        XCTAssertEqual(config.byte(b + 1), 0)
        XCTAssertNotEqual(config.read(register: 1) & 0x0010_0000, 0)
    }

    func testMsixMaskingLeavesVectorsPendingUntilUnmasked() {
        let vectors = RecordingVectors()
        let table = MsixTable(vectorCount: 3, vectors: vectors)
        func write(_ offset: UInt64, _ value: UInt32) {
            var v = value
            withUnsafeBytes(of: &v) { table.writeTable(offset: offset, data: $0) }
        }
        table.signal(vector: 1)
        XCTAssertTrue(vectors.triggers.isEmpty, "MSI-X disabled")
        write(16, 0xFEE0_0000)
        write(24, 0x41)
        XCTAssertEqual(vectors.updates.last?.1, MsiMessage(address: 0xFEE0_0000, data: 0x41))
        table.setControl(0x8000)
        XCTAssertTrue(vectors.triggers.isEmpty, "vector 1 still masked")
        var pba: UInt64 = 0
        withUnsafeMutableBytes(of: &pba) { table.readPBA(offset: 0, data: $0) }
        XCTAssertEqual(pba, 0b10)
        write(28, 0) // unmask vector 1
        XCTAssertEqual(vectors.triggers, [1], "the pending vector is sent on unmask")
        table.signal(vector: 1)
        XCTAssertEqual(vectors.triggers, [1, 1])
        table.setControl(0xC000) // function mask
        table.signal(vector: 1)
        XCTAssertEqual(vectors.triggers.count, 2)
        table.setControl(0x8000)
        XCTAssertEqual(vectors.triggers, [1, 1, 1])
        let cap = table.capability(bar: 0, tableOffset: 0x8000, pbaOffset: 0x48000)
        XCTAssertEqual(cap.body[0], 2, "table size - 1")
    }

    func testBarAllocatorAlignsToSize() throws {
        var allocator = PciBarAllocator(base: 0xC000_1000, size: 0x10_0000)
        XCTAssertEqual(try allocator.allocate(size: 0x8_0000, for: "a"), 0xC008_0000)
        XCTAssertThrowsError(try allocator.allocate(size: 0x10_0000, for: "b")) {
            XCTAssertTrue("\($0)".contains("no room"), "\($0)")
        }
    }
}
