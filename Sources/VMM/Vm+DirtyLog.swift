import Foundation
import Hypervisor
import Memory

/// How KVM logs guest writes for live migration. Chosen when the VM is built: the dirty ring can only be
/// enabled before the first vCPU exists.
enum DirtyLogMechanism: String {
    /// KVM_GET_DIRTY_LOG per slot, which reads, clears and re-protects in one step.
    case plain
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_GET_DIRTY_LOG only reads; KVM_CLEAR_DIRTY_LOG re-protects
    /// the pages read.
    case manual
    /// KVM_CAP_DIRTY_LOG_RING: one ring of dirtied pages per vCPU, harvested and reset each pass.
    case ring

    /// `SWIFTCH_DIRTY_LOG=plain|manual|ring` in the VMM's environment (hidden switch, for measuring).
    static let selected = ProcessInfo.processInfo.environment["SWIFTCH_DIRTY_LOG"].flatMap(Self.init(rawValue:)) ?? .plain

    /// Entries per vCPU ring (16 bytes each): 256 MiB of 4 KiB pages, so a pass of the migration tests'
    /// heaviest writer rarely fills a ring (a full ring costs the vCPU an exit and a harvest).
    static let ringEntries = 65536
}

/// Dirty-page tracking over all of a VM's RAM, for live migration.
///
/// KVM logs guest writes only: what virtio devices write into guest memory (request results, used
/// rings) is recorded in the VMM's own bitmap (`GuestMemory.vmmDirty`) and merged in here, or the
/// destination would miss it.
extension Vm {
    /// Sets `vm` up for the selected mechanism: call right after creating it.
    static func prepareDirtyLog(_ vm: VirtualMachine) throws(KVMError) {
        switch DirtyLogMechanism.selected {
        case .plain: break
        case .manual: try vm.enableManualDirtyLogProtect()
        case .ring:
            let most = Int(max(vm.checkExtension(KVM_CAP_DIRTY_LOG_RING), vm.checkExtension(KVM_CAP_DIRTY_LOG_RING_ACQ_REL))) / 16
            try vm.enableDirtyRing(entries: min(DirtyLogMechanism.ringEntries, most))
        }
    }

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
        if enabled {
            memory.vmmDirty.start()
            // What an earlier, failed migration left in the rings (nothing is logged while logging is off).
            _ = try kvmVM.dirtyRings?.take(slotPages: [])
        }
        try Self.registerMemory(memory, in: kvmVM, logDirty: enabled)
        if !enabled { memory.vmmDirty.stop() }
    }

    /// Pages written since logging started or since the previous call: one bitmap per region in KVM's
    /// layout. Each page is write-protected again before it is returned, so a write after the caller has
    /// copied it is logged anew.
    func takeDirtyLog() throws(KVMError) -> [[UInt64]] {
        let pages = memory.regions.map { Int($0.size / 4096) }
        let kvm: [[UInt64]]
        if let rings = kvmVM.dirtyRings {
            kvm = try rings.take(slotPages: pages)
        } else {
            kvm = try pages.enumerated().map { (slot, count) throws(KVMError) in
                let bitmap = try kvmVM.dirtyLog(slot: UInt32(slot), pages: count)
                if DirtyLogMechanism.selected == .manual, bitmap.contains(where: { $0 != 0 }) {
                    try kvmVM.clearDirtyLog(slot: UInt32(slot), firstPage: 0, bitmap: bitmap, pages: count)
                }
                return bitmap
            }
        }
        return kvm.enumerated().map { slot, bitmap in
            let vmm = memory.vmmDirty.take(region: slot)
            return zip(bitmap, vmm).map { $0 | $1 } + bitmap.dropFirst(vmm.count)
        }
    }
}
