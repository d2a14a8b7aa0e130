import Devices
import Synchronization

/// Why a device could not join the PCI bus.
public enum PciError: Error, CustomStringConvertible, Equatable {
    case busFull
    case slotTaken(Int)
    case noBarSpace(device: String, size: UInt64)
    case barOverlap(device: String, detail: String)

    public var description: String {
        switch self {
        case .busFull: return "PCI bus 0 has no free slot (31 devices at most)"
        case let .slotTaken(slot): return "PCI slot \(slot) is already taken"
        case let .noBarSpace(device, size):
            return "no room for a \(size)-byte BAR of \(device) in the PCI MMIO window"
        case let .barOverlap(device, detail): return "cannot map a BAR of \(device): \(detail)"
        }
    }
}

/// PCI segment 0, bus 0: slots, configuration cycles (legacy 0xCF8/0xCFC and ECAM), and the mapping of
/// each BAR onto the MMIO bus — which follows the guest when it reprograms a BAR.
public final class PciBus: Sendable {
    private let slots = Mutex<[Int: any PciDevice]>([:])
    private let mmio: Bus

    /// `mmio`: the VM's MMIO bus, where BARs are placed.
    public init(mmio: Bus) {
        self.mmio = mmio
        slots.withLock { $0[0] = PciHostBridge() }
    }

    /// Places `device` in the first free slot (or `slot`) and maps its BARs. Returns the slot.
    @discardableResult
    public func add(_ device: any PciDevice, name: String, slot: Int? = nil) throws -> Int {
        let chosen = try slots.withLock { s throws(PciError) -> Int in
            if let slot {
                guard s[slot] == nil else { throw .slotTaken(slot) }
                return slot
            }
            guard let free = (1..<32).first(where: { s[$0] == nil }) else { throw .busFull }
            return free
        }
        for bar in device.bars {
            do {
                try mmio.register(PciBarRegion(device: device, index: bar.index), base: bar.address, size: bar.size)
            } catch {
                for placed in device.bars where placed.index != bar.index { mmio.unregister(base: placed.address) }
                throw PciError.barOverlap(device: name, detail: "\(error)")
            }
        }
        slots.withLock { $0[chosen] = device }
        return chosen
    }

    public func device(slot: Int) -> (any PciDevice)? { slots.withLock { $0[slot] } }

    /// Moves a BAR's MMIO mapping (guest reprogramming or a restore to another address).
    public func remap(_ device: any PciDevice, _ move: PciBarMove) {
        mmio.unregister(base: move.from)
        // A guest that parks a BAR on top of another is wrong; the access then goes nowhere, as on hardware.
        try? mmio.register(PciBarRegion(device: device, index: move.index), base: move.to, size: move.size)
        device.barMoved(move)
    }

    func configRead(slot: Int, function: Int, register: Int) -> UInt32 {
        guard function == 0, let device = device(slot: slot) else { return 0xFFFF_FFFF }
        return device.readConfig(register: register)
    }

    func configWrite(slot: Int, function: Int, offset: Int, data: UnsafeRawBufferPointer) {
        guard function == 0, let device = device(slot: slot) else { return }
        if let move = device.writeConfig(offset: offset, data: data) { remap(device, move) }
    }
}

/// One BAR of a device as an MMIO bus range.
final class PciBarRegion: BusDevice {
    let device: any PciDevice
    let index: Int
    init(device: any PciDevice, index: Int) {
        self.device = device
        self.index = index
    }
    func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) { device.readBar(index, offset: offset, data: data) }
    func write(offset: UInt64, data: UnsafeRawBufferPointer) { device.writeBar(index, offset: offset, data: data) }
}

/// Configuration mechanism #1: the address register at 0xCF8 and the data window at 0xCFC–0xCFF.
public final class PciConfigIO: BusDevice, Sendable {
    public static let base: UInt16 = 0xCF8
    public static let size: UInt16 = 8
    private let bus: PciBus
    private let address = Mutex<UInt32>(0)

    public init(bus: PciBus) { self.bus = bus }

    /// (slot, function, register) selected by the address register, if enabled and on bus 0.
    private func selected() -> (Int, Int, Int)? {
        let a = address.withLock { $0 }
        guard a & 0x8000_0000 != 0, (a >> 16) & 0xFF == 0 else { return nil }
        return (Int((a >> 11) & 0x1F), Int((a >> 8) & 0x7), Int((a >> 2) & 0x3F))
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        if offset < 4 {
            let a = address.withLock { $0 } >> (8 * UInt32(offset))
            for k in 0..<data.count { data[k] = UInt8(truncatingIfNeeded: a >> (8 * UInt32(k))) }
            return
        }
        guard let (slot, function, register) = selected() else {
            for k in 0..<data.count { data[k] = 0xFF }
            return
        }
        let value = bus.configRead(slot: slot, function: function, register: register) >> (8 * UInt32(offset - 4))
        for k in 0..<data.count { data[k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        if offset == 0 && data.count == 4 {
            address.withLock { $0 = data.loadUnaligned(as: UInt32.self) }
            return
        }
        guard offset >= 4, let (slot, function, register) = selected() else { return }
        bus.configWrite(slot: slot, function: function, offset: register * 4 + Int(offset - 4), data: data)
    }
}

/// Enhanced configuration access (ECAM/MMCONFIG): 4 KiB of config space per function, bus 0 only.
public final class PciConfigMMIO: BusDevice, Sendable {
    private let bus: PciBus
    public init(bus: PciBus) { self.bus = bus }

    private static func decode(_ offset: UInt64) -> (slot: Int, function: Int, offset: Int)? {
        guard offset >> 20 == 0 else { return nil } // bus 0 only
        return (Int((offset >> 15) & 0x1F), Int((offset >> 12) & 0x7), Int(offset & 0xFFF))
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard let d = Self.decode(offset), d.offset % 4 + data.count <= 4 else {
            for k in 0..<data.count { data[k] = 0xFF }
            return
        }
        let value = bus.configRead(slot: d.slot, function: d.function, register: d.offset / 4) >> (8 * UInt32(d.offset % 4))
        for k in 0..<data.count { data[k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let d = Self.decode(offset), d.offset % 4 + data.count <= 4 else { return }
        bus.configWrite(slot: d.slot, function: d.function, offset: d.offset, data: data)
    }
}

/// Hands out BAR addresses from a window, each aligned to its size (as PCI requires).
public struct PciBarAllocator: Sendable {
    private var next: UInt64
    private let end: UInt64

    public init(base: UInt64, size: UInt64) {
        next = base
        end = base + size
    }

    public mutating func allocate(size: UInt64, for device: String) throws(PciError) -> UInt64 {
        let address = (next + size - 1) & ~(size - 1)
        guard address + size <= end else { throw .noBarSpace(device: device, size: size) }
        next = address + size
        return address
    }
}
