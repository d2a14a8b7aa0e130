import Synchronization

/// What the `DebugPort` remembers (diagnostics only: a guest cannot read it back).
public struct DebugPortState: Codable, Sendable, Equatable {
    public var lastCode: UInt8?

    public init(lastCode: UInt8? = nil) {
        self.lastCode = lastCode
    }
}

/// The POST-code port 0x80. Firmware writes progress codes here and Linux writes it as an I/O
/// delay (`outb_p`); both are accepted and counted. Cloud Hypervisor logs codes by range; `onCode`
/// lets the VMM do the same. Reads return 0xFF, like an empty ISA port.
public final class DebugPort: BusDevice, Snapshottable {
    public static let stateVersion = 1
    public static let base: UInt64 = 0x80
    public static let size: UInt64 = 1

    /// The code ranges Cloud Hypervisor assigns, for log messages.
    public enum CodeRange: String, Sendable {
        case firmware = "Firmware", bootloader = "Bootloader", kernel = "Kernel",
             userspace = "Userspace", custom = "Custom"

        public init(code: UInt8) {
            switch code {
            case 0x00...0x1F: self = .firmware
            case 0x20...0x3F: self = .bootloader
            case 0x40...0x5F: self = .kernel
            case 0x60...0x7F: self = .userspace
            default: self = .custom
            }
        }
    }

    private struct Inner {
        var state = DebugPortState()
        var writes: UInt64 = 0
    }

    private let onCode: (@Sendable (UInt8) -> Void)?
    private let inner = Mutex(Inner())

    /// - Parameter onCode: called on the vCPU thread for every code written (keep it cheap).
    public init(onCode: (@Sendable (UInt8) -> Void)? = nil) {
        self.onCode = onCode
    }

    /// Number of writes to the port.
    public var writeCount: UInt64 { inner.withLock { $0.writes } }
    public var lastCode: UInt8? { inner.withLock { $0.state.lastCode } }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        data.fill(with: 0xFF)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        guard let code = data.first else { return }
        inner.withLock {
            $0.writes += 1
            $0.state.lastCode = code
        }
        onCode?(code)
    }

    public func saveState() -> DebugPortState { inner.withLock { $0.state } }

    public func restoreState(_ state: DebugPortState) throws(DeviceStateError) {
        inner.withLock { $0.state = state }
    }
}
