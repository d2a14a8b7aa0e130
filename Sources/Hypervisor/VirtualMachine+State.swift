/// VM-wide device state for snapshot/restore: kvmclock, the in-kernel PICs/IOAPIC, the PIT.
extension VirtualMachine {
    /// KVM_GET_CLOCK: the guest's kvmclock base (ns). Restore it so guest time does not jump.
    public func getClock() throws(KVMError) -> kvm_clock_data {
        try ioctlGet(fd, CKVM_GET_CLOCK, "KVM_GET_CLOCK")
    }

    public func setClock(_ c: kvm_clock_data) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_CLOCK, c, "KVM_SET_CLOCK")
    }

    /// KVM_GET_IRQCHIP for chip 0 (PIC master), 1 (PIC slave) or 2 (IOAPIC).
    public func getIRQChip(_ chip: UInt32) throws(KVMError) -> kvm_irqchip {
        try ioctlGet(fd, CKVM_GET_IRQCHIP, "KVM_GET_IRQCHIP") { $0.chip_id = chip }
    }

    /// KVM_SET_IRQCHIP; the chip is the one named in `c.chip_id`.
    public func setIRQChip(_ c: kvm_irqchip) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_IRQCHIP, c, "KVM_SET_IRQCHIP")
    }

    public func getPIT2() throws(KVMError) -> kvm_pit_state2 {
        try ioctlGet(fd, CKVM_GET_PIT2, "KVM_GET_PIT2")
    }

    public func setPIT2(_ s: kvm_pit_state2) throws(KVMError) {
        try ioctlSet(fd, CKVM_SET_PIT2, s, "KVM_SET_PIT2")
    }
}
