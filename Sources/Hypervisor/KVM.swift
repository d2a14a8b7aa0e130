import Glibc

/// The KVM system handle (`/dev/kvm`): capability queries, host CPUID/MSR lists, and VM creation.
/// Immutable after init, so it can be shared between threads.
public final class KVM: Sendable {
    /// The open /dev/kvm descriptor (closed on deinit).
    public let fd: Int32
    /// Size of each vCPU's shared `kvm_run` mapping (KVM_GET_VCPU_MMAP_SIZE), asked once here.
    public let vcpuMmapSize: Int

    /// Opens the device and checks it speaks API 12 (the only stable KVM API).
    public init(path: String = "/dev/kvm") throws(KVMError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .open(path: path, errno: errno) }
        var opened = false
        defer { if !opened { close(fd) } }
        let version = try ioctlValue(fd, CKVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION")
        guard version == KVM_API_VERSION else { throw .apiVersion(found: version) }
        vcpuMmapSize = Int(try ioctlValue(fd, CKVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE"))
        self.fd = fd
        opened = true
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION: 0 when `cap` (a KVM_CAP_* constant) is absent, else a cap-specific value
    /// (often 1, sometimes a count or size). Errors read as "absent".
    public func checkExtension(_ cap: Int32) -> Int32 {
        (try? ioctlValue(fd, CKVM_CHECK_EXTENSION, UInt(cap), "KVM_CHECK_EXTENSION")) ?? 0
    }

    /// KVM_GET_SUPPORTED_CPUID: what this host+KVM can expose to a guest. A long-mode guest needs (a
    /// filtered copy of) this passed to `VirtualCPU.setCPUID`, or it triple-faults.
    public func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        try readCPUID(fd: fd, request: CKVM_GET_SUPPORTED_CPUID, name: "KVM_GET_SUPPORTED_CPUID")
    }

    /// KVM_GET_MSR_INDEX_LIST: the MSRs whose state a snapshot must save and restore.
    public func msrIndexList() throws(KVMError) -> [UInt32] {
        try readMSRList(request: CKVM_GET_MSR_INDEX_LIST, name: "KVM_GET_MSR_INDEX_LIST")
    }

    /// KVM_GET_MSR_FEATURE_INDEX_LIST: feature MSRs (e.g. ARCH_CAPABILITIES) readable on the system fd.
    public func msrFeatureIndexList() throws(KVMError) -> [UInt32] {
        try readMSRList(request: CKVM_GET_MSR_FEATURE_INDEX_LIST, name: "KVM_GET_MSR_FEATURE_INDEX_LIST")
    }

    /// KVM_CREATE_VM (default machine type).
    public func createVM() throws(KVMError) -> VirtualMachine {
        let vmfd = try ioctlValue(fd, CKVM_CREATE_VM, 0, "KVM_CREATE_VM")
        return VirtualMachine(fd: vmfd, vcpuMmapSize: vcpuMmapSize)
    }

    /// The list ioctls answer E2BIG and store the needed count when the buffer is too small: ask with 0
    /// first, then with the count the kernel gave.
    private func readMSRList(request: UInt, name: String) throws(KVMError) -> [UInt32] {
        var capacity = 0
        while true {
            let buffer = FlexibleArrayBuffer<UInt32>(entriesOffset: CKVM_MSR_LIST_INDICES_OFFSET, count: capacity)
            buffer.headerCount = UInt32(capacity)
            do {
                try ioctlRaw(fd, request, buffer.raw, name)
                return Array(UnsafeBufferPointer(start: buffer.entries, count: Int(buffer.headerCount)))
            } catch let error where error.errno == E2BIG && Int(buffer.headerCount) > capacity {
                capacity = Int(buffer.headerCount)
            }
        }
    }
}

/// KVM_GET_SUPPORTED_CPUID and KVM_GET_CPUID2 fail with E2BIG rather than say how many entries they
/// need: grow the buffer until it fits.
func readCPUID(fd: Int32, request: UInt, name: String) throws(KVMError) -> [CPUIDEntry] {
    var capacity = 64
    while true {
        let buffer = FlexibleArrayBuffer<kvm_cpuid_entry2>(entriesOffset: CKVM_CPUID2_ENTRIES_OFFSET, count: capacity)
        buffer.headerCount = UInt32(capacity)
        do {
            try ioctlRaw(fd, request, buffer.raw, name)
            return UnsafeBufferPointer(start: buffer.entries, count: Int(buffer.headerCount)).map(CPUIDEntry.init)
        } catch let error where error.errno == E2BIG && capacity < 4096 {
            capacity *= 2
        }
    }
}
