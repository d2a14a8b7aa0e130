import Memory
import Synchronization

/// A split virtqueue (virtio 1.2 §2.7) as the device sees it: pops descriptor chains the driver made
/// available, returns them as used, and decides whether the driver wants an interrupt.
///
/// Used from one thread at a time (the device thread while active; the control thread while the
/// device is paused, to save `lastAvailIdx`/`nextUsedIdx`).
public final class Virtqueue: @unchecked Sendable {
    static let descFNext: UInt16 = 1
    static let descFWrite: UInt16 = 2
    static let descFIndirect: UInt16 = 4
    static let availFNoInterrupt: UInt16 = 1

    public let index: Int
    public let size: UInt16
    public let descTable: UInt64
    public let availRing: UInt64
    public let usedRing: UInt64
    /// False for a queue the driver left disabled: nothing may be popped from it.
    public let isReady: Bool
    /// VIRTIO_F_RING_EVENT_IDX was negotiated.
    public let eventIdx: Bool
    /// VIRTIO_F_RING_INDIRECT_DESC was negotiated.
    public let indirect: Bool
    let memory: GuestMemory

    /// The next avail ring slot the device will read.
    public private(set) var lastAvailIdx: UInt16
    /// The next used ring slot the device will write (equal to used->idx as published).
    public private(set) var nextUsedIdx: UInt16
    /// used->idx when the driver was last interrupted (event-idx suppression needs the old value).
    private var signalledUsedIdx: UInt16

    public init(index: Int, size: UInt16, descTable: UInt64, availRing: UInt64, usedRing: UInt64,
                isReady: Bool, eventIdx: Bool, indirect: Bool, memory: GuestMemory,
                lastAvailIdx: UInt16 = 0, nextUsedIdx: UInt16 = 0) {
        self.index = index
        self.size = size
        self.descTable = descTable
        self.availRing = availRing
        self.usedRing = usedRing
        self.isReady = isReady
        self.eventIdx = eventIdx
        self.indirect = indirect
        self.memory = memory
        self.lastAvailIdx = lastAvailIdx
        self.nextUsedIdx = nextUsedIdx
        signalledUsedIdx = nextUsedIdx
    }

    /// Checks that the rings lie in guest RAM (at DRIVER_OK, so a bad address fails the activation,
    /// not a later request).
    public func validate() throws(VirtioError) {
        guard isReady else { return }
        guard size > 0, size & (size - 1) == 0 else { throw .badRing(queue: index, reason: "size \(size) is not a power of two") }
        let n = UInt64(size)
        let parts: [(String, UInt64, UInt64, UInt64)] = [
            ("descriptor table", descTable, 16 * n, 16), ("available ring", availRing, 6 + 2 * n, 2),
            ("used ring", usedRing, 6 + 8 * n, 4),
        ]
        for (name, address, length, alignment) in parts {
            guard address % alignment == 0 else {
                throw .badRing(queue: index, reason: "\(name) at 0x\(String(address, radix: 16)) is not \(alignment)-byte aligned")
            }
            guard memory.region(containing: address, count: length) != nil else {
                throw .badRing(queue: index, reason: "\(name) at 0x\(String(address, radix: 16))+\(length) is not guest RAM")
            }
        }
    }

    private func ringPointer(_ address: UInt64, _ count: UInt64) throws(VirtioError) -> UnsafeMutableRawPointer {
        do { return try memory.pointer(at: address, count: count) } catch {
            throw .badRing(queue: index, reason: "ring address 0x\(String(address, radix: 16)) is not guest RAM")
        }
    }

    /// avail->idx as the driver last published it.
    private func availIdx() throws(VirtioError) -> UInt16 {
        let p = try ringPointer(availRing + 2, 2)
        let value = UInt16(littleEndian: p.assumingMemoryBound(to: UInt16.self).pointee)
        atomicMemoryFence(ordering: .acquiring)
        return value
    }

    /// Whether the driver made buffers available that were not popped yet.
    public func hasAvailable() throws(VirtioError) -> Bool {
        guard isReady else { return false }
        return try availIdx() != lastAvailIdx
    }

    /// The next available chain, or nil when the ring is empty. A malformed chain is consumed (so the
    /// queue does not stall on it) and reported as an error: the caller returns it as used with length 0.
    public func pop() throws(VirtioError) -> DescriptorChain? {
        guard isReady, try availIdx() != lastAvailIdx else { return nil }
        let slot = UInt64(lastAvailIdx % size)
        let head = UInt16(littleEndian: try ringPointer(availRing + 4 + 2 * slot, 2).load(as: UInt16.self))
        lastAvailIdx &+= 1
        return try walk(head: head)
    }

    private struct Descriptor {
        let address: UInt64, length: UInt32, flags: UInt16, next: UInt16
    }

    private func descriptor(table: UInt64, index: UInt16, head: UInt16) throws(VirtioError) -> Descriptor {
        let p: UnsafeMutableRawPointer
        do { p = try memory.pointer(at: table + 16 * UInt64(index), count: 16) } catch {
            throw .badDescriptor(queue: self.index, head: head, reason: "descriptor \(index) is not in guest RAM")
        }
        return Descriptor(address: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)),
                          length: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                          flags: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self)),
                          next: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
    }

    /// Follows a chain (and at most one indirect table, which may not nest) into buffers.
    private func walk(head: UInt16) throws(VirtioError) -> DescriptorChain {
        guard head < size else { throw .badDescriptor(queue: index, head: head, reason: "head index \(head) ≥ queue size \(size)") }
        var readable: [GuestBuffer] = [], writable: [GuestBuffer] = []
        var table = descTable, tableSize = size, i = head, steps = 0, inIndirect = false
        while true {
            let d = try descriptor(table: table, index: i, head: head)
            if d.flags & Self.descFIndirect != 0 {
                guard indirect, !inIndirect else {
                    throw .badDescriptor(queue: index, head: head, reason: inIndirect ? "nested indirect table" : "indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC")
                }
                guard d.flags & Self.descFNext == 0 else {
                    throw .badDescriptor(queue: index, head: head, reason: "indirect descriptor with NEXT set")
                }
                guard d.length > 0, d.length % 16 == 0, d.length / 16 <= 65536 else {
                    throw .badDescriptor(queue: index, head: head, reason: "indirect table length \(d.length) is not a multiple of 16")
                }
                table = d.address
                tableSize = UInt16(truncatingIfNeeded: min(d.length / 16, 65535))
                i = 0
                steps = 0
                inIndirect = true
                continue
            }
            if d.length > 0 {
                guard memory.region(containing: d.address, count: UInt64(d.length)) != nil else {
                    throw .badDescriptor(queue: index, head: head, reason: "buffer 0x\(String(d.address, radix: 16))+\(d.length) is not guest RAM")
                }
                let buffer = GuestBuffer(address: d.address, length: d.length)
                if d.flags & Self.descFWrite != 0 {
                    writable.append(buffer)
                } else {
                    guard writable.isEmpty else {
                        throw .badDescriptor(queue: index, head: head, reason: "device-readable buffer after a device-writable one")
                    }
                    readable.append(buffer)
                }
            }
            steps += 1
            guard d.flags & Self.descFNext != 0 else { break }
            guard d.next < tableSize else {
                throw .badDescriptor(queue: index, head: head, reason: "next index \(d.next) out of range")
            }
            guard steps < Int(tableSize) else { throw .badDescriptor(queue: index, head: head, reason: "descriptor loop") }
            i = d.next
        }
        return DescriptorChain(head: head, readable: readable, writable: writable)
    }

    /// Gives back the chain `pop` returned last, unused: the device found nothing to put in it (an empty
    /// TAP or socket), and the driver's buffer must stay available — also across a snapshot, which saves
    /// `lastAvailIdx`. The avail slot still names the same head: the driver only writes past avail->idx.
    public func unpop() {
        lastAvailIdx &-= 1
    }

    /// Returns a chain to the driver with `length` bytes written into its writable buffers.
    public func pushUsed(head: UInt16, length: UInt32) throws(VirtioError) {
        let slot = UInt64(nextUsedIdx % size)
        let element = try ringPointer(usedRing + 4 + 8 * slot, 8)
        element.storeBytes(of: UInt32(head).littleEndian, as: UInt32.self)
        element.storeBytes(of: length.littleEndian, toByteOffset: 4, as: UInt32.self)
        nextUsedIdx &+= 1
        // The element must be visible before the index that publishes it.
        atomicMemoryFence(ordering: .releasing)
        try ringPointer(usedRing + 2, 2).storeBytes(of: nextUsedIdx.littleEndian, as: UInt16.self)
        memory.markDirty(usedRing + 4 + 8 * slot, count: 8)
        memory.markDirty(usedRing + 2, count: 2)
    }

    /// Whether the driver wants an interrupt for what was used since the last one (event-idx or
    /// NO_INTERRUPT suppression). Call after a batch of `pushUsed`; a true answer is consumed.
    public func needsNotification() throws(VirtioError) -> Bool {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let old = signalledUsedIdx, new = nextUsedIdx
        guard old != new else { return false }
        let notify: Bool
        if eventIdx {
            // used_event sits after the avail ring; notify when it lies in (old, new] (vring_need_event).
            let usedEvent = UInt16(littleEndian: try ringPointer(availRing + 4 + 2 * UInt64(size), 2).load(as: UInt16.self))
            notify = (new &- usedEvent &- 1) < (new &- old)
        } else {
            let flags = UInt16(littleEndian: try ringPointer(availRing, 2).load(as: UInt16.self))
            notify = flags & Self.availFNoInterrupt == 0
        }
        signalledUsedIdx = new
        return notify
    }

    /// With event-idx, asks the driver to notify when it adds past what was popped. Returns whether
    /// buffers arrived meanwhile (then the caller must keep popping, or a notification is lost).
    public func enableNotification() throws(VirtioError) -> Bool {
        guard isReady else { return false }
        if eventIdx {
            let address = usedRing + 4 + 8 * UInt64(size)
            try ringPointer(address, 2).storeBytes(of: lastAvailIdx.littleEndian, as: UInt16.self)
            memory.markDirty(address, count: 2)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return try hasAvailable()
    }
}
