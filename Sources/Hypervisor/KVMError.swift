import Glibc

/// Why a KVM operation failed. Each message names the ioctl (or syscall) and the errno text, plus a hint
/// about the usual cause when there is a well-known one.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    /// Opening the KVM device failed.
    case open(path: String, errno: Int32)
    /// The device speaks a KVM API other than 12 (the only stable one).
    case apiVersion(found: Int32)
    /// An ioctl failed; `name` is its KVM name (e.g. "KVM_CREATE_VM").
    case ioctl(name: String, errno: Int32)
    /// Mapping the vCPU's shared `kvm_run` area failed.
    case mmap(size: Int, errno: Int32)
    /// The caller passed something KVM would reject; the text says what and why.
    case invalidArgument(String)

    /// The errno behind the failure, if any.
    public var errno: Int32? {
        switch self {
        case .open(_, let e), .ioctl(_, let e), .mmap(_, let e): return e
        case .apiVersion, .invalidArgument: return nil
        }
    }

    public var description: String {
        switch self {
        case let .open(path, e):
            var hint = ""
            switch e {
            case ENOENT: hint = " — is the kvm module loaded (kvm_intel, kvm_amd or kvm_pvm)?"
            case EACCES, EPERM: hint = " — is \(path) accessible? (run as root or join the kvm group)"
            default: break
            }
            return "open(\(path)) failed: \(errnoText(e))\(hint)"
        case let .apiVersion(found):
            return "KVM_GET_API_VERSION returned \(found), expected \(KVM_API_VERSION) — unsupported kernel"
        case let .ioctl(name, e):
            return "\(name) failed: \(errnoText(e))\(Self.hint(ioctl: name, errno: e))"
        case let .mmap(size, e):
            return "mmap of kvm_run (\(size) bytes) failed: \(errnoText(e))"
        case let .invalidArgument(text):
            return text
        }
    }

    /// Usual causes of the errors a VMM meets while bringing a VM up.
    private static func hint(ioctl name: String, errno e: Int32) -> String {
        switch (name, e) {
        case (_, EACCES), (_, EPERM): return " — is /dev/kvm accessible?"
        case ("KVM_CREATE_VM", ENOMEM), ("KVM_CREATE_VCPU", ENOMEM): return " — host out of memory"
        case ("KVM_CREATE_VCPU", EEXIST): return " — this vCPU id already exists in the VM"
        case ("KVM_CREATE_VCPU", EINVAL): return " — vCPU id beyond KVM_CAP_MAX_VCPU_ID, or too many vCPUs"
        case ("KVM_CREATE_IRQCHIP", EEXIST), ("KVM_CREATE_PIT2", EEXIST): return " — already created for this VM"
        case ("KVM_CREATE_PIT2", ENOENT): return " — create the in-kernel irqchip first"
        case ("KVM_SET_USER_MEMORY_REGION", EEXIST): return " — overlaps another memory slot"
        case ("KVM_SET_USER_MEMORY_REGION", EINVAL):
            return " — guest address, size and host address must be page-aligned; slot id within KVM_CAP_NR_MEMSLOTS"
        case ("KVM_SET_USER_MEMORY_REGION", EFAULT): return " — host range is not mapped in this process"
        case ("KVM_IRQFD", EINVAL), ("KVM_IRQ_LINE", ENXIO): return " — is the in-kernel irqchip created and the GSI routed?"
        case ("KVM_IOEVENTFD", EEXIST): return " — an ioeventfd is already registered for this address/datamatch"
        case ("KVM_IOEVENTFD", EINVAL): return " — length must be 0, 1, 2, 4 or 8"
        case ("KVM_GET_DIRTY_LOG", ENOENT), ("KVM_CLEAR_DIRTY_LOG", ENOENT):
            return " — the slot was not registered with logDirty: true"
        case ("KVM_CLEAR_DIRTY_LOG", EINVAL):
            return " — firstPage must be a multiple of 64 and pages within the slot; enable manual dirty-log protect first"
        case ("KVM_SET_CPUID2", E2BIG): return " — too many CPUID entries"
        case ("KVM_GET_LAPIC", ENXIO), ("KVM_SET_LAPIC", ENXIO): return " — create the in-kernel irqchip first"
        case ("KVM_GET_IRQCHIP", ENXIO), ("KVM_SET_IRQCHIP", ENXIO), ("KVM_GET_PIT2", ENXIO), ("KVM_SET_PIT2", ENXIO):
            return " — create the in-kernel irqchip / PIT first"
        default: return ""
        }
    }
}

func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }
