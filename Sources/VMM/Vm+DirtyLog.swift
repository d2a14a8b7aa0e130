import Hypervisor
import Memory

/// Dirty-page tracking over all of a VM's RAM, for live migration.
///
/// KVM's dirty bitmap with manual protect (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, enabled when the VM is
/// built): KVM_GET_DIRTY_LOG reads a slot's bitmap, KVM_CLEAR_DIRTY_LOG write-protects again only the pages
/// read. The dirty ring was measured against it and lost on this host (migration/README.md, "Dirty logging").
///
/// KVM logs guest writes only: what virtio devices write into guest memory (request results, used
/// rings) is recorded in the VMM's own bitmap (`GuestMemory.vmmDirty`) and merged in here, or the
/// destination would miss it.
extension Vm {
    /// Slot `i` is `memory.regions[i]`: how RAM is registered at build time and how its log is read back.
    static func registerMemory(_ memory: GuestMemory, in vm: VirtualMachine, logDirty: Bool) throws(KVMError) {
        for (slot, region) in memory.regions.enumerated() {
            try vm.setUserMemoryRegion(slot: UInt32(slot), guestAddress: region.guestBase, size: region.size,
                                       host: region.host, logDirty: logDirty)
        }
    }

    /// Starts or stops KVM dirty logging on every slot (re-registering a slot with only the flag changed
    /// is allowed while vCPUs run). Starting write-protects all RAM, so every later guest write is logged.
    func setDirtyLogging(_ enabled: Bool) throws(KVMError) {
        if enabled { memory.vmmDirty.start() }
        try Self.registerMemory(memory, in: kvmVM, logDirty: enabled)
        if !enabled { memory.vmmDirty.stop() }
    }

    /// Pages written since logging started or since the previous call: one bitmap per region in KVM's
    /// layout. The pages read are write-protected again before this returns, so a write after the caller
    /// has copied a page is logged anew; one between the read and the clear is in the page the caller copies.
    func takeDirtyLog() throws(KVMError) -> [[UInt64]] {
        try memory.regions.enumerated().map { (slot, region) throws(KVMError) in
            let pages = Int(region.size / 4096)
            let kvm = try kvmVM.dirtyLog(slot: UInt32(slot), pages: pages)
            if kvm.contains(where: { $0 != 0 }) {
                try kvmVM.clearDirtyLog(slot: UInt32(slot), firstPage: 0, bitmap: kvm, pages: pages)
            }
            let vmm = memory.vmmDirty.take(region: slot)
            return zip(kvm, vmm).map { $0 | $1 } + kvm.dropFirst(vmm.count)
        }
    }
}
