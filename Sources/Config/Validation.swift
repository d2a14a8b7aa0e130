/// Why a VmConfig cannot be booted. Checked at `vm.boot` (CH validates at boot, not at create).
public enum ValidationError: Error, CustomStringConvertible, Equatable {
    case noPayload
    case noKernel
    case firmwareUnsupported
    case zeroVCPUs
    case bootAboveMax(boot: UInt32, max: UInt32)
    case tooManyVCPUs(max: UInt32, limit: UInt32)
    case memoryTooSmall(size: UInt64, minimum: UInt64)
    case memoryNotPageAligned(size: UInt64)
    case consoleNeedsPath(flag: String, mode: ConsoleMode)

    public var description: String {
        switch self {
        case .noPayload: return "no payload: a kernel is required (--kernel or payload.kernel)"
        case .noKernel: return "payload has no kernel: set payload.kernel (--kernel)"
        case .firmwareUnsupported: return "firmware payloads are not supported: boot a kernel directly (PVH ELF or bzImage)"
        case .zeroVCPUs: return "boot_vcpus must be at least 1"
        case let .bootAboveMax(boot, max): return "boot_vcpus (\(boot)) is greater than max_vcpus (\(max))"
        case let .tooManyVCPUs(max, limit): return "max_vcpus (\(max)) exceeds what KVM supports here (\(limit))"
        case let .memoryTooSmall(size, minimum):
            return "memory size \(size) bytes is too small: at least \(minimum >> 20) MiB is required"
        case let .memoryNotPageAligned(size): return "memory size \(size) is not a multiple of 4 KiB"
        case let .consoleNeedsPath(flag, mode): return "\(flag) mode \(mode.rawValue) needs a path"
        }
    }
}

extension VmConfig {
    /// The smallest guest this VMM boots: the kernel loads at 1 MiB and needs room above it.
    public static let minimumMemory: UInt64 = 8 << 20

    /// Checks what can be checked without touching the host (files are checked when they are opened).
    public func validate(maxVCPUsSupported: UInt32 = 1024) throws {
        guard let payload else { throw ValidationError.noPayload }
        if payload.firmware != nil && payload.kernel == nil { throw ValidationError.firmwareUnsupported }
        guard payload.kernel != nil else { throw ValidationError.noKernel }
        guard cpus.boot_vcpus >= 1 else { throw ValidationError.zeroVCPUs }
        guard cpus.boot_vcpus <= cpus.max_vcpus else {
            throw ValidationError.bootAboveMax(boot: cpus.boot_vcpus, max: cpus.max_vcpus)
        }
        guard cpus.max_vcpus <= maxVCPUsSupported else {
            throw ValidationError.tooManyVCPUs(max: cpus.max_vcpus, limit: maxVCPUsSupported)
        }
        guard memory.size >= Self.minimumMemory else {
            throw ValidationError.memoryTooSmall(size: memory.size, minimum: Self.minimumMemory)
        }
        guard memory.size % 4096 == 0 else { throw ValidationError.memoryNotPageAligned(size: memory.size) }
        for (flag, c) in [("serial", serial), ("console", console)] {
            if c.mode == .File && c.file == nil { throw ValidationError.consoleNeedsPath(flag: flag, mode: c.mode) }
            if c.mode == .Socket && c.socket == nil { throw ValidationError.consoleNeedsPath(flag: flag, mode: c.mode) }
        }
    }
}
