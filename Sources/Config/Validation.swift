/// Why a VmConfig cannot be booted. Checked at `vm.boot` (CH validates at boot, not at create) and for each
/// device added at runtime. Messages follow CH's wording where CH has one.
public enum ValidationError: Error, CustomStringConvertible, Equatable {
    case noPayload
    case noKernel
    case firmwareUnsupported
    case firmwarePlusKernel
    case zeroVCPUs
    case bootAboveMax(boot: UInt32, max: UInt32)
    case tooManyVCPUs(max: UInt32, limit: UInt32)
    case memoryTooSmall(size: UInt64, minimum: UInt64)
    case memoryNotPageAligned(size: UInt64)
    case consoleNeedsPath(flag: String, mode: ConsoleMode)
    /// Both would read the VMM's stdin.
    case doubleTtyMode
    case cpuTopologyZeroPart
    case cpuTopologyThreadsPerCore(UInt16)
    case cpuTopologyCount(product: UInt32, maxVCPUs: UInt32)
    case hugePageSizeWithoutHugePages
    case invalidHugePageSize(UInt64)
    case sharedMemoryWithMergeable
    /// An id starting with `__`: those name the VMM's own devices.
    case invalidIdentifier(String)
    /// Two devices (or zones, or rate-limit groups) share an id. A conflict: the API answers 409.
    case identifierNotUnique(String)
    /// The same VFIO device path twice. A conflict: the API answers 409.
    case duplicateDevicePath(String)
    case diskSocketAndPath
    case vhostUserRequiresSharedMemory(device: String)
    case vhostUserMissingSocket(device: String)
    case tooManyQueues(device: String, queues: Int, bootVCPUs: UInt32)
    case invalidQueueSize(device: String, size: UInt16)
    case diskSerialTooLong(length: Int, maximum: Int)
    case unknownRateLimitGroup(String)
    case netQueuesBelowTwo(Int)
    case netQueueFdMismatch(queues: Int, fds: Int)
    case mtuTooSmall(UInt16)
    case checksumOffloadRequired
    case ipAndMaskMustBePaired
    case vsockSpecialCID(UInt32)
    case balloonLargerThanRAM(balloon: UInt64, ram: UInt64)
    case invalidNumPciSegments(UInt16)
    case invalidPciSegment(UInt16)
    case vfioDeviceNeedsPathOrFd

    /// Whether the API reports this as 409 Conflict (an id or path already in use) rather than 400.
    public var isConflict: Bool {
        switch self {
        case .identifierNotUnique, .duplicateDevicePath: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .noPayload: return "no payload: a kernel is required (--kernel or payload.kernel)"
        case .noKernel: return "payload has no kernel: set payload.kernel (--kernel)"
        case .firmwareUnsupported: return "firmware payloads are not supported: boot a kernel directly (PVH ELF or bzImage)"
        case .firmwarePlusKernel: return "Specifying a kernel is not supported when a firmware is provided"
        case .zeroVCPUs: return "boot_vcpus must be at least 1"
        case let .bootAboveMax(boot, max): return "boot_vcpus (\(boot)) is greater than max_vcpus (\(max))"
        case let .tooManyVCPUs(max, limit): return "max_vcpus (\(max)) exceeds what KVM supports here (\(limit))"
        case let .memoryTooSmall(size, minimum):
            return "memory size \(size) bytes is too small: at least \(minimum >> 20) MiB is required"
        case let .memoryNotPageAligned(size): return "memory size \(size) is not a multiple of 4 KiB"
        case let .consoleNeedsPath(flag, mode): return "\(flag) mode \(mode.rawValue) needs a path"
        case .doubleTtyMode:
            return "Console mode tty specified for both serial and virtio-console (use --console off or another mode for one of them)"
        case .cpuTopologyZeroPart: return "No part of the CPU topology can be zero"
        case let .cpuTopologyThreadsPerCore(n): return "CPU topology supports at most 2 threads per core (got \(n))"
        case let .cpuTopologyCount(product, max):
            return "Product of CPU topology parts (\(product)) does not match maximum vCPUs (\(max))"
        case .hugePageSizeWithoutHugePages: return "Huge page size specified but huge pages not enabled"
        case let .invalidHugePageSize(size): return "Huge page size is not power of 2: \(size)"
        case .sharedMemoryWithMergeable: return "Memory cannot be both shared and mergeable"
        case let .invalidIdentifier(id):
            return "Identifier \(id) is not valid: ids starting with '__' are reserved for the VMM's own devices"
        case let .identifierNotUnique(id): return "Identifier \(id) is not unique"
        case let .duplicateDevicePath(path): return "Duplicated device path: \(path)"
        case .diskSocketAndPath: return "Disk path and vhost socket both provided"
        case let .vhostUserRequiresSharedMemory(device):
            return "\(device): vhost-user requires shared memory or huge pages (--memory shared=on)"
        case let .vhostUserMissingSocket(device): return "\(device): no socket provided when using vhost-user"
        case let .tooManyQueues(device, queues, vcpus):
            return "\(device): queue count (\(queues)) must not exceed boot vCPUs (\(vcpus))"
        case let .invalidQueueSize(device, size):
            return "\(device): queue size must be a power of 2 no greater than 32768: \(size)"
        case let .diskSerialTooLong(length, maximum): return "Disk serial is \(length) bytes, at most \(maximum) allowed"
        case let .unknownRateLimitGroup(id): return "Rate limit group \(id) is not defined in rate_limit_groups"
        case let .netQueuesBelowTwo(n): return "Number of queues (\(n)) to virtio_net should be at least 2"
        case let .netQueueFdMismatch(queues, fds):
            return "Number of queues (\(queues)) to virtio_net does not match the number of FDs (\(fds)) times 2"
        case let .mtuTooSmall(mtu): return "Provided MTU \(mtu) is lower than 1280 (expected by VIRTIO specification)"
        case .checksumOffloadRequired: return "\"offload_tso\" and \"offload_ufo\" depend on \"offload_csum\""
        case .ipAndMaskMustBePaired: return "Net ip and mask must be given together"
        case let .vsockSpecialCID(cid): return "\(cid) is a special VSOCK CID"
        case let .balloonLargerThanRAM(balloon, ram): return "Balloon size (\(balloon)) greater than RAM (\(ram))"
        case let .invalidNumPciSegments(n):
            return "Number of PCI segments (\(n)) not in range of 1 to \(PlatformConfig.maxPciSegments)"
        case let .invalidPciSegment(s): return "Invalid PCI segment id: \(s)"
        case .vfioDeviceNeedsPathOrFd: return "VFIO device config must specify exactly one of `path=` or `fd=`"
        }
    }
}

extension VmConfig {
    /// The smallest guest this VMM boots: the kernel loads at 1 MiB and needs room above it.
    public static let minimumMemory: UInt64 = 8 << 20

    /// Checks what can be checked without touching the host (files are checked when they are opened).
    public func validate(maxVCPUsSupported: UInt32 = 1024) throws {
        guard let payload else { throw ValidationError.noPayload }
        if payload.firmware != nil && payload.kernel != nil { throw ValidationError.firmwarePlusKernel }
        if payload.firmware != nil && payload.kernel == nil { throw ValidationError.firmwareUnsupported }
        guard payload.kernel != nil else { throw ValidationError.noKernel }
        try validateCPUs(maxVCPUsSupported: maxVCPUsSupported)
        try validateMemory()
        for (flag, c) in [("serial", serial), ("console", console)] {
            if c.mode == .File && c.file == nil { throw ValidationError.consoleNeedsPath(flag: flag, mode: c.mode) }
            if c.mode == .Socket && c.socket == nil { throw ValidationError.consoleNeedsPath(flag: flag, mode: c.mode) }
        }
        if serial.mode == .Tty && console.mode == .Tty { throw ValidationError.doubleTtyMode }
        try validateDevices()
    }

    private func validateCPUs(maxVCPUsSupported: UInt32) throws {
        guard cpus.boot_vcpus >= 1 else { throw ValidationError.zeroVCPUs }
        guard cpus.boot_vcpus <= cpus.max_vcpus else {
            throw ValidationError.bootAboveMax(boot: cpus.boot_vcpus, max: cpus.max_vcpus)
        }
        guard cpus.max_vcpus <= maxVCPUsSupported else {
            throw ValidationError.tooManyVCPUs(max: cpus.max_vcpus, limit: maxVCPUsSupported)
        }
        if let t = cpus.topology {
            let parts = [t.threads_per_core, t.cores_per_die, t.dies_per_package, t.packages]
            guard !parts.contains(0) else { throw ValidationError.cpuTopologyZeroPart }
            guard t.threads_per_core <= 2 else { throw ValidationError.cpuTopologyThreadsPerCore(t.threads_per_core) }
            let product = parts.reduce(UInt32(1)) { $0 * UInt32($1) }
            guard product == cpus.max_vcpus else {
                throw ValidationError.cpuTopologyCount(product: product, maxVCPUs: cpus.max_vcpus)
            }
        }
    }

    private func validateMemory() throws {
        guard memory.size >= Self.minimumMemory else {
            throw ValidationError.memoryTooSmall(size: memory.size, minimum: Self.minimumMemory)
        }
        guard memory.size % 4096 == 0 else { throw ValidationError.memoryNotPageAligned(size: memory.size) }
        for (hugepages, size, shared, mergeable) in [(memory.hugepages, memory.hugepage_size, memory.shared, memory.mergeable)]
            + (memory.zones ?? []).map({ ($0.hugepages, $0.hugepage_size, $0.shared, $0.mergeable) }) {
            if shared && mergeable { throw ValidationError.sharedMemoryWithMergeable }
            guard let size else { continue }
            guard hugepages else { throw ValidationError.hugePageSizeWithoutHugePages }
            guard size != 0, size & (size - 1) == 0 else { throw ValidationError.invalidHugePageSize(size) }
        }
    }
}
