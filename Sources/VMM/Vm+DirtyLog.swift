import Hypervisor
import Memory

/// Dirty-page tracking over all of a VM's RAM, for live migration.
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
    /// layout. KVM_GET_DIRTY_LOG reads, clears and re-protects in one step, so no write is lost between calls.
    func takeDirtyLog() throws(KVMError) -> [[UInt64]] {
        try memory.regions.enumerated().map { (slot, region) throws(KVMError) in
            let kvm = try kvmVM.dirtyLog(slot: UInt32(slot), pages: Int(region.size / 4096))
            let vmm = memory.vmmDirty.take(region: slot)
            return zip(kvm, vmm).map { $0 | $1 } + kvm.dropFirst(vmm.count)
        }
    }
}
