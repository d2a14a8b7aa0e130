/// Dirty-page tracking for snapshot and live migration. Only guest writes are logged: pages the VMM
/// writes itself (device DMA, loaders) never appear, so track those separately.
extension VirtualMachine {
    /// KVM_GET_DIRTY_LOG for a slot registered with `logDirty: true`: one bit per 4 KiB page of the slot
    /// (bit `p % 64` of word `p / 64`), `pages` = slot size / 4096. Without manual protect this also
    /// re-arms tracking (each call returns the pages written since the previous call).
    public func dirtyLog(slot: UInt32, pages: Int) throws(KVMError) -> [UInt64] {
        let words = (pages + 63) / 64
        let bitmap = UnsafeMutablePointer<UInt64>.allocate(capacity: max(words, 1))
        defer { bitmap.deallocate() }
        bitmap.initialize(repeating: 0, count: max(words, 1))
        var log = kvm_dirty_log()
        log.slot = slot
        log.dirty_bitmap = UnsafeMutableRawPointer(bitmap)
        try ioctlSet(fd, CKVM_GET_DIRTY_LOG, log, "KVM_GET_DIRTY_LOG")
        return Array(UnsafeBufferPointer(start: bitmap, count: words))
    }

    /// Enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_GET_DIRTY_LOG then only reads the log, and pages are
    /// re-protected by `clearDirtyLog` — cheaper, and avoids a window where writes are lost. With
    /// `initiallySet`, every page starts dirty (no initial write-protect pass). Call before adding slots.
    public func enableManualDirtyLogProtect(initiallySet: Bool = false) throws(KVMError) {
        let supported = UInt64(max(checkExtension(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), 0))
        var wanted = CKVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
        if initiallySet { wanted |= CKVM_DIRTY_LOG_INITIALLY_SET }
        guard supported & wanted == wanted else {
            throw .invalidArgument("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 not supported by this KVM (flags \(supported), wanted \(wanted)): live migration's dirty logging needs Linux 5.8 or later")
        }
        try enableCapability(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, args: [wanted])
    }

    /// KVM_CLEAR_DIRTY_LOG (manual protect only): re-protects the pages whose bits are set in `bitmap`,
    /// starting at `firstPage` (a multiple of 64). `pages` defaults to 64 per bitmap word; pass the exact
    /// count when the range reaches the end of a slot whose page count is not a multiple of 64.
    public func clearDirtyLog(slot: UInt32, firstPage: UInt64, bitmap: [UInt64], pages: Int? = nil) throws(KVMError) {
        guard firstPage % 64 == 0 else { throw .invalidArgument("clearDirtyLog: firstPage \(firstPage) must be a multiple of 64") }
        let count = pages ?? bitmap.count * 64
        guard count <= bitmap.count * 64 else {
            throw .invalidArgument("clearDirtyLog: \(count) pages need \((count + 63) / 64) bitmap words, got \(bitmap.count)")
        }
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: max(bitmap.count, 1))
        defer { words.deallocate() }
        words.initialize(repeating: 0, count: max(bitmap.count, 1))
        words.update(from: bitmap, count: bitmap.count)
        var request = kvm_clear_dirty_log()
        request.slot = slot
        request.num_pages = UInt32(count)
        request.first_page = firstPage
        request.dirty_bitmap = UnsafeMutableRawPointer(words)
        try ioctlSet(fd, CKVM_CLEAR_DIRTY_LOG, request, "KVM_CLEAR_DIRTY_LOG")
    }
}
