/// The kind of memory a BAR decodes.
public enum PciBarKind: Sendable, Equatable, Codable {
    case memory32, memory64
}

/// A BAR as placed in guest-physical space.
public struct PciBar: Sendable, Equatable, Codable {
    public let index: Int
    public let size: UInt64
    public let kind: PciBarKind
    public let prefetchable: Bool
    public internal(set) var address: UInt64
}

/// A BAR the guest reprogrammed: its old and new guest-physical address.
public struct PciBarMove: Sendable, Equatable {
    public let index: Int
    public let from: UInt64
    public let to: UInt64
    public let size: UInt64

    public init(index: Int, from: UInt64, to: UInt64, size: UInt64) {
        self.index = index
        self.from = from
        self.to = to
        self.size = size
    }
}

/// A type-0 PCI configuration space (4 KiB, so ECAM's extended space reads as zeros), with per-bit
/// write masks so that read-only fields stay read-only whatever the guest writes, BAR sizing
/// (write all-ones, read the size mask back), and a capability list.
///
/// Not thread-safe: its owner serialises access (config cycles come from vCPU threads).
public struct PciConfiguration: Sendable, Equatable, Codable {
    public static let size = 4096
    static let barRegister = 4           // dword index of BAR0 (offset 0x10)
    static let capabilitiesPointer = 0x34

    public private(set) var registers: [UInt32]
    private var writeMasks: [UInt32]
    public private(set) var bars: [PciBar]
    private var nextCapability = 0x40
    private var lastCapability = 0

    public init(vendor: UInt16, device: UInt16, classCode: UInt8, subclass: UInt8, progIf: UInt8 = 0,
                revision: UInt8 = 0, subsystemVendor: UInt16 = 0, subsystemID: UInt16 = 0) {
        registers = Array(repeating: 0, count: Self.size / 4)
        writeMasks = Array(repeating: 0, count: Self.size / 4)
        bars = []
        registers[0] = UInt32(device) << 16 | UInt32(vendor)
        registers[2] = UInt32(classCode) << 24 | UInt32(subclass) << 16 | UInt32(progIf) << 8 | UInt32(revision)
        registers[11] = UInt32(subsystemID) << 16 | UInt32(subsystemVendor)
        // Command: I/O, memory, bus master, INTx disable are the guest's to set.
        writeMasks[1] = 0x0000_0407
        // Interrupt line is scratch for the OS.
        writeMasks[15] = 0x0000_00FF
    }

    /// Declares BAR `index` (a 64-bit BAR also takes `index + 1`). `size` must be a power of two ≥ 16.
    public mutating func addBar(index: Int, size: UInt64, kind: PciBarKind, prefetchable: Bool, address: UInt64) {
        precondition(size >= 16 && size & (size - 1) == 0, "BAR size must be a power of two")
        bars.append(PciBar(index: index, size: size, kind: kind, prefetchable: prefetchable, address: address))
        let reg = Self.barRegister + index
        let flags: UInt32 = (kind == .memory64 ? 0x4 : 0) | (prefetchable ? 0x8 : 0)
        let mask = ~(size - 1)
        writeMasks[reg] = UInt32(truncatingIfNeeded: mask) & ~0xF
        registers[reg] = UInt32(truncatingIfNeeded: address) & ~0xF | flags
        if kind == .memory64 {
            writeMasks[reg + 1] = UInt32(truncatingIfNeeded: mask >> 32)
            registers[reg + 1] = UInt32(truncatingIfNeeded: address >> 32)
        }
    }

    /// Appends a capability (`body` follows the id and next-pointer bytes); returns its offset.
    /// `writableMask` (same length as body) says which body bits the guest may change.
    @discardableResult
    public mutating func addCapability(id: UInt8, body: [UInt8], writableMask: [UInt8]? = nil) -> Int {
        let offset = nextCapability
        let bytes = [id, 0] + body
        for (k, b) in bytes.enumerated() { setByte(offset + k, b) }
        if let writableMask {
            for (k, m) in writableMask.enumerated() { setMaskByte(offset + 2 + k, m) }
        }
        if lastCapability == 0 {
            setByte(Self.capabilitiesPointer, UInt8(offset))
            registers[1] |= 0x0010_0000 // status: capabilities list
        } else {
            setByte(lastCapability + 1, UInt8(offset))
        }
        lastCapability = offset
        nextCapability = (offset + bytes.count + 3) & ~3
        return offset
    }

    public func read(register: Int) -> UInt32 {
        registers.indices.contains(register) ? registers[register] : 0xFFFF_FFFF
    }

    public func byte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: registers[offset / 4] >> (8 * (offset % 4))) }

    private mutating func setByte(_ offset: Int, _ value: UInt8) {
        let shift = UInt32(8 * (offset % 4))
        registers[offset / 4] = registers[offset / 4] & ~(0xFF << shift) | UInt32(value) << shift
    }

    private mutating func setMaskByte(_ offset: Int, _ value: UInt8) {
        let shift = UInt32(8 * (offset % 4))
        writeMasks[offset / 4] = writeMasks[offset / 4] & ~(0xFF << shift) | UInt32(value) << shift
    }

    /// A guest write of `data` (1, 2 or 4 bytes) at byte `offset`; only writable bits change.
    /// Returns the BAR the write moved, if any: a BAR moves when the write completes its address
    /// (the low dword of a 32-bit BAR, the high dword of a 64-bit one) and the result is not the
    /// all-ones pattern of BAR sizing.
    public mutating func write(offset: Int, data: UnsafeRawBufferPointer) -> PciBarMove? {
        let register = offset / 4
        guard registers.indices.contains(register), data.count > 0, offset % 4 + data.count <= 4 else { return nil }
        var value: UInt32 = 0, byteMask: UInt32 = 0
        for (k, b) in data.enumerated() {
            let shift = UInt32(8 * (offset % 4 + k))
            value |= UInt32(b) << shift
            byteMask |= 0xFF << shift
        }
        let mask = writeMasks[register] & byteMask
        registers[register] = registers[register] & ~mask | value & mask
        return barMove(after: register, allOnes: value & byteMask == byteMask)
    }

    private mutating func barMove(after register: Int, allOnes: Bool) -> PciBarMove? {
        guard let k = bars.firstIndex(where: { bar in
            let reg = Self.barRegister + bar.index
            return bar.kind == .memory64 ? register == reg + 1 : register == reg
        }), !allOnes else { return nil }
        let reg = Self.barRegister + bars[k].index
        var address = UInt64(registers[reg] & ~0xF)
        if bars[k].kind == .memory64 { address |= UInt64(registers[reg + 1]) << 32 }
        guard address != bars[k].address else { return nil }
        let move = PciBarMove(index: bars[k].index, from: bars[k].address, to: address, size: bars[k].size)
        bars[k].address = address
        return move
    }

    /// Direct access for the owner (capability fields the device itself updates, restore).
    public mutating func setRegister(_ register: Int, _ value: UInt32) { registers[register] = value }
}
