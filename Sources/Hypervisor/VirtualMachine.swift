import Glibc

/// A KVM virtual machine (the fd from KVM_CREATE_VM): memory slots, in-kernel interrupt controllers,
/// interrupt/notification plumbing, and vCPU creation. KVM serialises VM ioctls itself, so any thread may
/// call these; the class only holds the immutable fd.
public final class VirtualMachine: @unchecked Sendable {
    /// The VM descriptor (closed on deinit, after every vCPU that holds this VM has gone).
    public let fd: Int32
    let vcpuMmapSize: Int

    init(fd: Int32, vcpuMmapSize: Int) {
        self.fd = fd
        self.vcpuMmapSize = vcpuMmapSize
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION on the VM: some caps (e.g. KVM_CAP_XSAVE2, KVM_CAP_NR_MEMSLOTS) are per-VM.
    public func checkExtension(_ cap: Int32) -> Int32 {
        (try? ioctlValue(fd, CKVM_CHECK_EXTENSION, UInt(cap), "KVM_CHECK_EXTENSION")) ?? 0
    }

    /// KVM_ENABLE_CAP on the VM with up to four arguments.
    public func enableCapability(_ cap: Int32, flags: UInt32 = 0, args: [UInt64] = []) throws(KVMError) {
        guard args.count <= 4 else { throw .invalidArgument("KVM_ENABLE_CAP takes at most 4 arguments, got \(args.count)") }
        var request = kvm_enable_cap()
        request.cap = UInt32(cap)
        request.flags = flags
        withUnsafeMutableBytes(of: &request.args) { _ = $0.bindMemory(to: UInt64.self).update(fromContentsOf: args) }
        try ioctlSet(fd, CKVM_ENABLE_CAP, request, "KVM_ENABLE_CAP(\(cap))")
    }

    /// KVM_SET_TSS_ADDR: three pages of guest-physical space below 4 GiB that KVM (on Intel) uses for
    /// real-mode emulation; must not overlap RAM or MMIO. Cloud Hypervisor uses 0xfffb_d000.
    public func setTSSAddress(_ addr: UInt64) throws(KVMError) {
        try ioctlValue(fd, CKVM_SET_TSS_ADDR, UInt(addr), "KVM_SET_TSS_ADDR")
    }

    /// KVM_SET_IDENTITY_MAP_ADDR: one page KVM (on Intel) uses for its real-mode identity page table;
    /// conventionally just below the TSS (0xfffb_c000).
    public func setIdentityMapAddress(_ addr: UInt64) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_IDENTITY_MAP_ADDR, addr, "KVM_SET_IDENTITY_MAP_ADDR")
    }

    /// KVM_CREATE_IRQCHIP: in-kernel PIC (master+slave), IOAPIC and a LAPIC per vCPU. Call before
    /// creating vCPUs so each gets its LAPIC.
    public func createIRQChip() throws(KVMError) {
        try ioctlValue(fd, CKVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP")
    }

    /// KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY, so port 0x61 reads work without a PC speaker model.
    /// Needs the in-kernel irqchip.
    public func createPIT2() throws(KVMError) {
        var config = kvm_pit_config()
        config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        try ioctlSet(fd, CKVM_CREATE_PIT2, config, "KVM_CREATE_PIT2")
    }

    /// KVM_SET_USER_MEMORY_REGION: maps `size` bytes at `host` as guest-physical `guestAddress` in `slot`.
    /// Size 0 removes the slot. Re-registering a slot with only `logDirty` changed toggles dirty logging.
    /// `readOnly` slots turn guest writes into `.mmioWrite` exits (ROM/flash).
    public func setUserMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64, host: UnsafeMutableRawPointer,
                                    logDirty: Bool = false, readOnly: Bool = false) throws(KVMError) {
        var region = kvm_userspace_memory_region()
        region.slot = slot
        region.flags = (logDirty ? CKVM_MEM_LOG_DIRTY_PAGES : 0) | (readOnly ? CKVM_MEM_READONLY : 0)
        region.guest_phys_addr = guestAddress
        region.memory_size = size
        region.userspace_addr = UInt64(UInt(bitPattern: host))
        try ioctlSet(fd, CKVM_SET_USER_MEMORY_REGION, region, "KVM_SET_USER_MEMORY_REGION")
    }

    /// KVM_CREATE_VCPU, then maps its `kvm_run` area. Create the irqchip first if you want one.
    public func createVCPU(id: UInt32) throws(KVMError) -> VirtualCPU {
        let vcpufd = try ioctlValue(fd, CKVM_CREATE_VCPU, UInt(id), "KVM_CREATE_VCPU")
        do {
            return try VirtualCPU(id: id, fd: vcpufd, vm: self)
        } catch {
            close(vcpufd)
            throw error
        }
    }
}
