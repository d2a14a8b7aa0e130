import Hypervisor
import Memory

/// Dirty-page tracking over all of a VM's RAM, for live migration.
///
/// KVM logs guest writes only. Nothing in this VMM writes guest RAM after boot today, but once virtio
/// devices DMA into guest memory their writes must be merged in from a VMM-side dirty bitmap, or the
/// destination would miss them.
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
        try Self.registerMemory(memory, in: kvmVM, logDirty: enabled)
    }

    /// Pages written since logging started or since the previous call: one bitmap per region in KVM's
    /// layout. KVM_GET_DIRTY_LOG reads, clears and re-protects in one step, so no write is lost between calls.
    func takeDirtyLog() throws(KVMError) -> [[UInt64]] {
        try memory.regions.enumerated().map { (slot, region) throws(KVMError) in
            try kvmVM.dirtyLog(slot: UInt32(slot), pages: Int(region.size / 4096))
        }
    }
}
