import Glibc
import Synchronization

/// One vCPU's dirty ring (KVM_CAP_DIRTY_LOG_RING): an array of `kvm_dirty_gfn` shared with KVM, in which
/// KVM appends (slot, page) each time the vCPU first writes a write-protected page of a logged slot.
///
/// Entries go 00 (free) → 01 (DIRTY, written by KVM) → 1x (RESET, written by us once read) → 00 again at
/// KVM_RESET_DIRTY_RINGS, which also write-protects those pages again. KVM fills the ring in order and
/// resets it in order, so we read from our own free-running index and stop at the first entry that is not
/// DIRTY; skipping one would stall KVM's reset at it.
struct DirtyRing {
    let entries: UnsafeMutablePointer<kvm_dirty_gfn>
    /// A power of two.
    let count: UInt32
    /// Index of the next entry to read; wraps at 2³² like KVM's own indices (`& (count - 1)` is the slot).
    private(set) var next: UInt32 = 0

    init(entries: UnsafeMutablePointer<kvm_dirty_gfn>, count: UInt32, next: UInt32 = 0) {
        precondition(count > 0 && count & (count - 1) == 0, "dirty ring size \(count) is not a power of two")
        self.entries = entries
        self.count = count
        self.next = next
    }

    /// Hands every entry KVM has published since the last call to `body` (slot id as KVM gives it, page
    /// offset within the slot), in ring order, marking each RESET after `body` has seen it. Returns how many.
    mutating func harvest(_ body: (_ slot: UInt32, _ page: UInt64) -> Void) -> Int {
        var harvested = 0
        while harvested < Int(count) {
            let entry = entries + Int(next & (count - 1))
            let flags = UnsafeMutableRawPointer(entry).assumingMemoryBound(to: UInt32.self)
            // Acquire: slot and offset are valid only once DIRTY is seen (KVM writes them first).
            guard ckvm_load_acquire_u32(flags) == CKVM_DIRTY_GFN_F_DIRTY else { break }
            body(entry.pointee.slot, entry.pointee.offset)
            // Release: KVM may recycle the entry only after we have read it.
            ckvm_store_release_u32(flags, CKVM_DIRTY_GFN_F_RESET)
            next &+= 1
            harvested += 1
        }
        return harvested
    }
}

/// Pages harvested from the rings and not yet taken: one bitmap per slot (bit `p % 64` of word `p / 64`,
/// KVM's bitmap layout), grown as pages arrive.
struct DirtyPageSet {
    private(set) var slots: [[UInt64]] = []

    /// `slot` is the id KVM reports: address space in the high 16 bits. Only address space 0 is ever
    /// registered here (no SMM), so anything else is not one of our slots and is left out.
    mutating func insert(slot: UInt32, page: UInt64) {
        guard slot >> 16 == 0 else { return }
        let s = Int(slot), word = Int(page / 64)
        if s >= slots.count { slots += Array(repeating: [], count: s + 1 - slots.count) }
        if word >= slots[s].count { slots[s] += Array(repeating: 0, count: word + 1 - slots[s].count) }
        slots[s][word] |= 1 << (page % 64)
    }

    /// The bitmaps of slots `0..<slotPages.count`, each exactly `(pages + 63) / 64` words; empties the set.
    mutating func take(slotPages: [Int]) -> [[UInt64]] {
        defer { slots = [] }
        return slotPages.enumerated().map { slot, pages in
            let words = (pages + 63) / 64
            let have = slot < slots.count ? slots[slot].prefix(words) : []
            return Array(have) + Array(repeating: 0, count: words - have.count)
        }
    }
}

/// The dirty rings of all vCPUs of one VM, and the pages harvested from them.
///
/// Two threads harvest: the collector (`take`, once per migration pass) and a vCPU thread whose ring is
/// full (`reap`, on KVM_EXIT_DIRTY_RING_FULL, so it can run on without waiting for the collector). Both
/// harvest every ring and reset under one lock, and `take` hands out the pages under it too: a page is then
/// handed out only after KVM_RESET_DIRTY_RINGS has write-protected it again, so a write after the copy is
/// always logged anew.
public final class DirtyRings: @unchecked Sendable {
    /// Entries per vCPU ring.
    public let entries: Int
    private let vmfd: Int32
    private let state = Mutex<(rings: [DirtyRing], pages: DirtyPageSet)>(([], DirtyPageSet()))

    init(vmfd: Int32, entries: Int) {
        self.vmfd = vmfd
        self.entries = entries
    }

    deinit {
        state.withLock { s in
            for ring in s.rings { munmap(ring.entries, Int(ring.count) * MemoryLayout<kvm_dirty_gfn>.stride) }
        }
    }

    /// Maps a new vCPU's ring (at page KVM_DIRTY_LOG_PAGE_OFFSET of the vCPU fd). The mapping outlives the
    /// vCPU's fd, and is unmapped with the VM.
    func map(vcpuFD: Int32) throws(KVMError) {
        let bytes = entries * MemoryLayout<kvm_dirty_gfn>.stride
        let mapping = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpuFD,
                           off_t(KVM_DIRTY_LOG_PAGE_OFFSET) * off_t(sysconf(Int32(_SC_PAGESIZE))))
        guard let mapping, mapping != MAP_FAILED else { throw .mmap(what: "the vCPU dirty ring", size: bytes, errno: errno) }
        let ring = DirtyRing(entries: mapping.bindMemory(to: kvm_dirty_gfn.self, capacity: entries), count: UInt32(entries))
        state.withLock { $0.rings.append(ring) }
    }

    /// Harvests every ring and resets them: for a vCPU that exited with KVM_EXIT_DIRTY_RING_FULL (it may
    /// run again afterwards). The pages wait for the next `take`.
    public func reap() throws(KVMError) {
        try state.withLock { (s) throws(KVMError) in try Self.harvest(&s, vmfd: vmfd) }
    }

    /// Every page logged since the previous `take` (or `reap`s since), as one bitmap per slot `i` of
    /// `slotPages[i]` pages; all rings are harvested and reset first.
    public func take(slotPages: [Int]) throws(KVMError) -> [[UInt64]] {
        try state.withLock { (s) throws(KVMError) -> [[UInt64]] in
            try Self.harvest(&s, vmfd: vmfd)
            return s.pages.take(slotPages: slotPages)
        }
    }

    private static func harvest(_ s: inout (rings: [DirtyRing], pages: DirtyPageSet), vmfd: Int32) throws(KVMError) {
        var harvested = 0
        for i in s.rings.indices {
            harvested += s.rings[i].harvest { slot, page in s.pages.insert(slot: slot, page: page) }
        }
        if harvested > 0 { try ioctlValue(vmfd, CKVM_RESET_DIRTY_RINGS, 0, "KVM_RESET_DIRTY_RINGS") }
    }
}

extension VirtualMachine {
    /// Switches dirty logging to per-vCPU rings of `entries` entries (a power of two, from 256 — one page —
    /// to KVM_CAP_DIRTY_LOG_RING / 16). Only before the first vCPU is created; the slots' dirty bitmaps
    /// (KVM_GET_DIRTY_LOG) are then unavailable. Uses the ACQ_REL flavour when KVM offers it (same protocol,
    /// which our harvest follows either way).
    public func enableDirtyRing(entries: Int) throws(KVMError) {
        let stride = MemoryLayout<kvm_dirty_gfn>.stride
        let acqRel = checkExtension(KVM_CAP_DIRTY_LOG_RING_ACQ_REL)
        let cap = acqRel > 0 ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING
        let maxBytes = Int(max(acqRel, checkExtension(KVM_CAP_DIRTY_LOG_RING)))
        guard maxBytes > 0 else { throw .invalidArgument("this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING is 0): use the dirty bitmap") }
        let minEntries = Int(sysconf(Int32(_SC_PAGESIZE))) / stride
        guard entries > 0, entries & (entries - 1) == 0, entries >= minEntries, entries * stride <= maxBytes else {
            throw .invalidArgument("dirty ring size \(entries) must be a power of two from \(minEntries) to \(maxBytes / stride) entries")
        }
        guard dirtyRings == nil else { throw .invalidArgument("the dirty ring is already enabled on this VM") }
        do {
            try enableCapability(cap, args: [UInt64(entries * stride)])
        } catch where error.errno == EINVAL {
            throw .invalidArgument("enabling the dirty ring failed: \(error) — it must come before the first vCPU is created")
        }
        dirtyRings = DirtyRings(vmfd: fd, entries: entries)
    }
}
