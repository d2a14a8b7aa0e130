import Synchronization

/// One MSI message: what the device writes (address/data) to interrupt the guest.
public struct MsiMessage: Sendable, Equatable, Codable {
    public var address: UInt64
    public var data: UInt32
    public init(address: UInt64, data: UInt32) {
        self.address = address
        self.data = data
    }
}

/// Delivers one device's MSI-X vectors to the guest. The VMM implements it with a KVM GSI route and
/// an irqfd per vector, so that a device thread interrupts the guest with one eventfd write.
public protocol MsiVectors: AnyObject, Sendable {
    /// The message of `vector` changed (its route must follow before the next `trigger`).
    func update(vector: Int, message: MsiMessage)
    /// Sends `vector` (unmasked: the table decided that already).
    func trigger(vector: Int)
}

/// An MSI-X capability with its table and pending-bit array (PCI 3.0 §6.8.2), which live in a BAR.
///
/// Masking follows the spec: a vector signalled while it (or the whole function) is masked sets its
/// pending bit, and is sent when unmasked. Device threads signal while vCPU threads program the table,
/// so the state sits behind a mutex.
public final class MsixTable: Sendable {
    public static let capabilityID: UInt8 = 0x11
    public static let entrySize = 16

    public struct Entry: Sendable, Equatable, Codable {
        public var addressLow: UInt32 = 0
        public var addressHigh: UInt32 = 0
        public var data: UInt32 = 0
        public var control: UInt32 = 1 // masked at reset
        var masked: Bool { control & 1 != 0 }
        var message: MsiMessage { MsiMessage(address: UInt64(addressHigh) << 32 | UInt64(addressLow), data: data) }
    }

    public struct State: Sendable, Equatable, Codable {
        public var entries: [Entry]
        public var pending: [UInt64]
        public var enabled = false
        public var functionMasked = false
    }

    public let vectorCount: Int
    private let state: Mutex<State>
    private let vectors: any MsiVectors

    public init(vectorCount: Int, vectors: any MsiVectors) {
        precondition(vectorCount > 0 && vectorCount <= 2048)
        self.vectorCount = vectorCount
        self.vectors = vectors
        state = Mutex(State(entries: Array(repeating: Entry(), count: vectorCount),
                            pending: Array(repeating: 0, count: (vectorCount + 63) / 64)))
    }

    public var tableSize: UInt64 { UInt64(vectorCount * Self.entrySize) }
    public var pbaSize: UInt64 { UInt64(((vectorCount + 63) / 64) * 8) }

    /// The capability body (after id/next): message control, table offset|BIR, PBA offset|BIR, and the
    /// mask of what the guest may write (enable and function-mask bits only).
    public func capability(bar: Int, tableOffset: UInt32, pbaOffset: UInt32) -> (body: [UInt8], writable: [UInt8]) {
        let control = UInt16(vectorCount - 1)
        let table = tableOffset | UInt32(bar), pba = pbaOffset | UInt32(bar)
        let body = [UInt8(control & 0xFF), UInt8(control >> 8)]
            + withUnsafeBytes(of: table.littleEndian, Array.init) + withUnsafeBytes(of: pba.littleEndian, Array.init)
        return (body, [0, 0xC0] + Array(repeating: 0, count: 8))
    }

    /// Applies the message-control bits the guest wrote (bit 15 enable, bit 14 function mask).
    public func setControl(_ control: UInt16) {
        let due = state.withLock { s -> [Int] in
            s.enabled = control & 0x8000 != 0
            s.functionMasked = control & 0x4000 != 0
            return Self.takeDeliverable(&s)
        }
        for v in due { vectors.trigger(vector: v) }
    }

    public func readTable(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        let value: UInt64 = state.withLock { s in
            let index = Int(offset) / Self.entrySize
            guard index < s.entries.count else { return 0 }
            let e = s.entries[index]
            let words = [e.addressLow, e.addressHigh, e.data, e.control]
            let word = Int(offset % 16) / 4
            return data.count == 8 && word % 2 == 0
                ? UInt64(words[word]) | UInt64(words[word + 1]) << 32
                : UInt64(words[word]) >> (8 * (offset % 4))
        }
        Self.fill(data, with: value)
    }

    public func writeTable(offset: UInt64, data: UnsafeRawBufferPointer) {
        var value: UInt64 = 0
        for (k, b) in data.prefix(8).enumerated() { value |= UInt64(b) << (8 * k) }
        let (changed, due) = state.withLock { s -> (Int?, [Int]) in
            let index = Int(offset) / Self.entrySize
            guard index < s.entries.count else { return (nil, []) }
            let before = s.entries[index]
            var words = [before.addressLow, before.addressHigh, before.data, before.control]
            let word = Int(offset % 16) / 4
            if data.count == 8 && word % 2 == 0 {
                words[word] = UInt32(truncatingIfNeeded: value)
                words[word + 1] = UInt32(truncatingIfNeeded: value >> 32)
            } else if data.count == 4 {
                words[word] = UInt32(truncatingIfNeeded: value)
            } else {
                return (nil, []) // the spec allows only dword and qword accesses
            }
            s.entries[index] = Entry(addressLow: words[0], addressHigh: words[1], data: words[2], control: words[3] & 1)
            let after = s.entries[index]
            return (after.message != before.message ? index : nil, Self.takeDeliverable(&s))
        }
        if let changed { vectors.update(vector: changed, message: state.withLock { $0.entries[changed].message }) }
        for v in due { vectors.trigger(vector: v) }
    }

    public func readPBA(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        let value: UInt64 = state.withLock { s in
            let word = Int(offset / 8)
            return word < s.pending.count ? s.pending[word] >> (8 * (offset % 8)) : 0
        }
        Self.fill(data, with: value)
    }

    /// A device event for `vector`: sent now, or left pending while masked or MSI-X is disabled.
    public func signal(vector: Int) {
        let send = state.withLock { s -> Bool in
            guard vector < s.entries.count else { return false }
            if s.enabled && !s.functionMasked && !s.entries[vector].masked { return true }
            s.pending[vector / 64] |= 1 << (vector % 64)
            return false
        }
        if send { vectors.trigger(vector: vector) }
    }

    public var isEnabled: Bool { state.withLock { $0.enabled } }

    public func saveState() -> State { state.withLock { $0 } }

    /// Puts the table back and re-announces every message (the routes of a new VM are empty).
    public func restoreState(_ saved: State) {
        state.withLock { $0 = saved }
        for (i, e) in saved.entries.enumerated() { vectors.update(vector: i, message: e.message) }
    }

    /// Pending vectors that may be sent now; their bits are cleared.
    private static func takeDeliverable(_ s: inout State) -> [Int] {
        guard s.enabled && !s.functionMasked else { return [] }
        var due: [Int] = []
        for (i, e) in s.entries.enumerated() where !e.masked && s.pending[i / 64] & (1 << (i % 64)) != 0 {
            s.pending[i / 64] &= ~(1 << (i % 64))
            due.append(i)
        }
        return due
    }

    private static func fill(_ data: UnsafeMutableRawBufferPointer, with value: UInt64) {
        for k in 0..<data.count { data[k] = k < 8 ? UInt8(truncatingIfNeeded: value >> (8 * k)) : 0 }
    }
}
