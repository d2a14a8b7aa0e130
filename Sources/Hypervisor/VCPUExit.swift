/// Why KVM_RUN returned to userspace.
///
/// The buffers point into the vCPU's `kvm_run` page: they are valid only until the next `run()` on the
/// same vCPU, and for `.ioIn`/`.ioInString`/`.mmioRead` the caller must fill them before that call — the
/// next KVM_RUN hands the bytes to the guest.
public enum VCPUExit {
    /// `in` of one element (count == 1): `data.count` is the access size (1, 2 or 4).
    case ioIn(port: UInt16, data: UnsafeMutableRawBufferPointer)
    /// `out` of one element (count == 1): `data.count` is the access size (1, 2 or 4).
    case ioOut(port: UInt16, data: UnsafeRawBufferPointer)
    /// `rep ins` (count > 1): `data` holds `data.count / size` elements of `size` bytes, element i at
    /// offset i·size, all for the same port. Fill each as if the guest had done a separate `in`.
    case ioInString(port: UInt16, size: Int, data: UnsafeMutableRawBufferPointer)
    /// `rep outs` (count > 1): elements laid out as for `.ioInString`, in the order the guest wrote them.
    case ioOutString(port: UInt16, size: Int, data: UnsafeRawBufferPointer)
    /// Guest read of unbacked guest-physical memory: `data.count` is the access size (1–8).
    case mmioRead(address: UInt64, data: UnsafeMutableRawBufferPointer)
    /// Guest write to unbacked (or read-only) guest-physical memory.
    case mmioWrite(address: UInt64, data: UnsafeRawBufferPointer)
    /// `hlt` with no in-kernel irqchip (with one, KVM waits for the interrupt itself).
    case halt
    /// Triple fault: the guest is dead (reset or stop the VM).
    case shutdown
    /// KVM_SYSTEM_EVENT_* (SHUTDOWN 1, RESET 2, CRASH 3, ...).
    case systemEvent(type: UInt32)
    /// KVM_RUN returned EINTR or KVM_EXIT_INTR: a signal or `kick()` (immediate_exit). Not cleared here:
    /// call `clearImmediateExit()` when the request that caused the kick has been handled.
    case interrupted
    /// KVM_RUN returned EAGAIN: an AP got INIT/SIPI while waiting in KVM_RUN. Just call `run()` again.
    case retry
    /// KVM could not handle the exit (suberror 1 = emulation failure); `details` are KVM's data words.
    case internalError(suberror: UInt32, details: [UInt64])
    /// VM entry failed (hardware reason code).
    case failEntry(reason: UInt64)
    /// Any other KVM_EXIT_* reason.
    case unknown(reason: UInt32)
}

extension VCPUExit {
    /// Port I/O and MMIO exits: KVM finishes their instruction when KVM_RUN is entered again (see
    /// `VirtualCPU.completePendingIO`).
    public var completesOnNextRun: Bool {
        switch self {
        case .ioIn, .ioOut, .ioInString, .ioOutString, .mmioRead, .mmioWrite: return true
        default: return false
        }
    }
}

extension VCPUExit: CustomStringConvertible {
    public var description: String {
        func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .ioIn(port, data): return "ioIn(port: \(hex(port)), size: \(data.count))"
        case let .ioOut(port, data): return "ioOut(port: \(hex(port)), data: \(Array(data)))"
        case let .ioInString(port, size, data): return "ioInString(port: \(hex(port)), size: \(size), count: \(data.count / size))"
        case let .ioOutString(port, size, data): return "ioOutString(port: \(hex(port)), size: \(size), count: \(data.count / size))"
        case let .mmioRead(address, data): return "mmioRead(address: \(hex(address)), size: \(data.count))"
        case let .mmioWrite(address, data): return "mmioWrite(address: \(hex(address)), data: \(Array(data)))"
        case .halt: return "halt"
        case .shutdown: return "shutdown (triple fault)"
        case let .systemEvent(type): return "systemEvent(type: \(type))"
        case .interrupted: return "interrupted"
        case .retry: return "retry"
        case let .internalError(suberror, details):
            return "internalError(suberror: \(suberror)\(suberror == 1 ? " emulation failure" : ""), details: \(details.map(hex)))"
        case let .failEntry(reason): return "failEntry(reason: \(hex(reason)))"
        case let .unknown(reason): return "unknown(reason: \(reason))"
        }
    }
}
