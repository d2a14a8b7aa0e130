import Synchronization

/// A device reached through guest port I/O or MMIO exits.
///
/// `offset` is relative to the base of the range the device was registered at. Reads fill `data`
/// (its count is the access size: 1, 2, 4 or 8); unread bytes must be set (0xFF for "nothing here").
/// Called from vCPU threads, possibly several at once: implementations protect their own state.
public protocol BusDevice: AnyObject, Sendable {
    func read(offset: UInt64, data: UnsafeMutableRawBufferPointer)
    func write(offset: UInt64, data: UnsafeRawBufferPointer)
}

/// An interrupt input of the guest's interrupt controller (a GSI), as seen by a device.
public protocol InterruptLine: Sendable {
    /// Raises or lowers a level-triggered line.
    func setLevel(_ high: Bool)
    /// Delivers one edge (raise then lower).
    func pulse()
}

/// What a platform device may ask of the VM as a whole (reset button, ACPI S5).
public protocol VMControl: AnyObject, Sendable {
    func requestReset()
    func requestShutdown()
}

/// Why a device could not be placed on a bus.
public enum BusError: Error, CustomStringConvertible, Equatable {
    case overlap(base: UInt64, size: UInt64)
    case emptyRange

    public var description: String {
        switch self {
        case let .overlap(base, size):
            return "bus range 0x\(String(base, radix: 16))+0x\(String(size, radix: 16)) overlaps a registered device"
        case .emptyRange: return "bus range has zero size"
        }
    }
}

/// Address → device dispatch for one address space (port I/O or MMIO).
///
/// Registration happens while the VM is built (and on hot-plug); lookups happen on every exit, so the
/// table is kept sorted and searched by bisection under a read-mostly lock.
public final class Bus: Sendable {
    public struct Entry: Sendable {
        public let base: UInt64
        public let size: UInt64
        public let device: any BusDevice
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    public func register(_ device: any BusDevice, base: UInt64, size: UInt64) throws {
        guard size > 0 else { throw BusError.emptyRange }
        try entries.withLock { list in
            if list.contains(where: { base < $0.base + $0.size && $0.base < base + size }) {
                throw BusError.overlap(base: base, size: size)
            }
            list.append(Entry(base: base, size: size, device: device))
            list.sort { $0.base < $1.base }
        }
    }

    public func unregister(base: UInt64) {
        entries.withLock { $0.removeAll { $0.base == base } }
    }

    /// The device covering `address` and the offset into it.
    public func resolve(_ address: UInt64) -> (device: any BusDevice, offset: UInt64)? {
        entries.withLock { list in
            var low = 0, high = list.count
            while low < high {
                let mid = (low + high) / 2
                if list[mid].base + list[mid].size <= address { low = mid + 1 } else { high = mid }
            }
            guard low < list.count, list[low].base <= address else { return nil }
            return (list[low].device, address - list[low].base)
        }
    }

    /// Dispatches a read; returns false (and fills 0xFF) when no device answers at `address`.
    @discardableResult
    public func read(_ address: UInt64, data: UnsafeMutableRawBufferPointer) -> Bool {
        guard let (device, offset) = resolve(address) else {
            for i in data.indices { data[i] = 0xFF }
            return false
        }
        device.read(offset: offset, data: data)
        return true
    }

    /// Dispatches a write; returns false when no device answers at `address` (the write is dropped).
    @discardableResult
    public func write(_ address: UInt64, data: UnsafeRawBufferPointer) -> Bool {
        guard let (device, offset) = resolve(address) else { return false }
        device.write(offset: offset, data: data)
        return true
    }
}
