import Glibc

/// Architectural vCPU state: set up for boot, and GET→SET round trip for snapshot/restore. On restore, set
/// CPUID first (it decides which MSRs and XSAVE components are valid) and vCPU events after the registers.
extension VirtualCPU {
    public func getRegs() throws(KVMError) -> kvm_regs { try ioctlGet(fd, CKVM_GET_REGS, "KVM_GET_REGS") }
    public func setRegs(_ regs: kvm_regs) throws(KVMError) { try ioctlSet(fd, CKVM_SET_REGS, regs, "KVM_SET_REGS") }

    public func getSregs() throws(KVMError) -> kvm_sregs { try ioctlGet(fd, CKVM_GET_SREGS, "KVM_GET_SREGS") }
    public func setSregs(_ sregs: kvm_sregs) throws(KVMError) { try ioctlSet(fd, CKVM_SET_SREGS, sregs, "KVM_SET_SREGS") }

    public func getFPU() throws(KVMError) -> kvm_fpu { try ioctlGet(fd, CKVM_GET_FPU, "KVM_GET_FPU") }
    public func setFPU(_ fpu: kvm_fpu) throws(KVMError) { try ioctlSet(fd, CKVM_SET_FPU, fpu, "KVM_SET_FPU") }

    /// The in-kernel LAPIC's registers (needs `createIRQChip` before this vCPU was created).
    public func getLAPIC() throws(KVMError) -> kvm_lapic_state { try ioctlGet(fd, CKVM_GET_LAPIC, "KVM_GET_LAPIC") }
    public func setLAPIC(_ lapic: kvm_lapic_state) throws(KVMError) { try ioctlSet(fd, CKVM_SET_LAPIC, lapic, "KVM_SET_LAPIC") }

    /// KVM_MP_STATE_* (RUNNABLE 0, UNINITIALIZED 1 for APs awaiting SIPI, INIT_RECEIVED 2, HALTED 3, ...).
    public func getMPState() throws(KVMError) -> UInt32 {
        let state: kvm_mp_state = try ioctlGet(fd, CKVM_GET_MP_STATE, "KVM_GET_MP_STATE")
        return state.mp_state
    }

    public func setMPState(_ value: UInt32) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_MP_STATE, kvm_mp_state(mp_state: value), "KVM_SET_MP_STATE")
    }

    /// The XSAVE area as opaque bytes (`xsaveSize` long). Uses KVM_GET_XSAVE2 when KVM_CAP_XSAVE2 says the
    /// area is larger than the legacy 4096-byte `kvm_xsave` (AMX), else KVM_GET_XSAVE.
    public func getXSAVE() throws(KVMError) -> [UInt8] {
        let size = xsaveSize
        let (request, name) = size > CKVM_XSAVE_LEGACY_SIZE ? (CKVM_GET_XSAVE2, "KVM_GET_XSAVE2")
                                                          : (CKVM_GET_XSAVE, "KVM_GET_XSAVE")
        var bytes = [UInt8](repeating: 0, count: size)
        try ioctlBytes(fd, request, &bytes, name)
        return bytes
    }

    /// KVM_SET_XSAVE; shorter input (e.g. a 4096-byte area from an older host) is zero-padded, since the
    /// kernel reads `xsaveSize` bytes.
    public func setXSAVE(_ bytes: [UInt8]) throws(KVMError) {
        guard bytes.count <= xsaveSize else {
            throw .invalidArgument("XSAVE area of \(bytes.count) bytes is larger than this host's \(xsaveSize)")
        }
        var padded = bytes + [UInt8](repeating: 0, count: xsaveSize - bytes.count)
        try ioctlBytes(fd, CKVM_SET_XSAVE, &padded, "KVM_SET_XSAVE")
    }

    public func getXCRS() throws(KVMError) -> kvm_xcrs { try ioctlGet(fd, CKVM_GET_XCRS, "KVM_GET_XCRS") }
    public func setXCRS(_ xcrs: kvm_xcrs) throws(KVMError) { try ioctlSet(fd, CKVM_SET_XCRS, xcrs, "KVM_SET_XCRS") }

    /// Pending exceptions/interrupts/NMIs and interrupt shadow: needed to resume exactly where stopped.
    public func getVCPUEvents() throws(KVMError) -> kvm_vcpu_events {
        try ioctlGet(fd, CKVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS")
    }
    public func setVCPUEvents(_ events: kvm_vcpu_events) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS")
    }

    public func getDebugRegs() throws(KVMError) -> kvm_debugregs {
        try ioctlGet(fd, CKVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS")
    }
    public func setDebugRegs(_ regs: kvm_debugregs) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_DEBUGREGS, regs, "KVM_SET_DEBUGREGS")
    }

    /// KVM_GET_TSC_KHZ: the guest TSC frequency.
    public func getTSCKHz() throws(KVMError) -> UInt32 {
        UInt32(try ioctlValue(fd, CKVM_GET_TSC_KHZ, 0, "KVM_GET_TSC_KHZ"))
    }

    /// KVM_SET_TSC_KHZ: restore the source host's TSC rate after migration (fails if it cannot be scaled).
    public func setTSCKHz(_ khz: UInt32) throws(KVMError) {
        try ioctlValue(fd, CKVM_SET_TSC_KHZ, UInt(khz), "KVM_SET_TSC_KHZ")
    }

    /// KVM_SET_CPUID2: what the guest's CPUID instruction reports (usually `KVM.supportedCPUID()`, filtered).
    /// Required before running a 64-bit guest.
    public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        let buffer = FlexibleArrayBuffer<kvm_cpuid_entry2>(entriesOffset: CKVM_CPUID2_ENTRIES_OFFSET, count: entries.count)
        buffer.headerCount = UInt32(entries.count)
        for (i, entry) in entries.enumerated() { buffer.entries[i] = entry.raw }
        try ioctlRaw(fd, CKVM_SET_CPUID2, buffer.raw, "KVM_SET_CPUID2")
    }

    /// KVM_GET_CPUID2: the CPUID previously set on this vCPU (for snapshots).
    public func getCPUID() throws(KVMError) -> [CPUIDEntry] {
        try readCPUID(fd: fd, request: CKVM_GET_CPUID2, name: "KVM_GET_CPUID2")
    }

    /// KVM_KVMCLOCK_CTRL: tells the guest it was paused (so its soft-lockup watchdog does not fire).
    /// Returns false when not applicable (EINVAL: the guest has not enabled kvmclock).
    @discardableResult
    public func kvmclockCtrl() throws(KVMError) -> Bool {
        do {
            try ioctlValue(fd, CKVM_KVMCLOCK_CTRL, 0, "KVM_KVMCLOCK_CTRL")
            return true
        } catch where error.errno == EINVAL {
            return false
        }
    }

    /// KVM_NMI: queue an NMI on this vCPU (through its in-kernel LAPIC).
    public func injectNMI() throws(KVMError) {
        try ioctlValue(fd, CKVM_NMI, 0, "KVM_NMI")
    }
}
