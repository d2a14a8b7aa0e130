/// Model-specific registers. KVM_GET_MSRS/KVM_SET_MSRS stop at the first MSR they cannot handle and
/// return how many they did; these wrappers skip the failing MSR and carry on, so one unsupported index
/// does not lose the rest of a snapshot.
extension VirtualCPU {
    /// Reads `indices`; returns only the MSRs that could be read, in order.
    public func getMSRs(_ indices: [UInt32]) throws(KVMError) -> [(index: UInt32, value: UInt64)] {
        var result: [(index: UInt32, value: UInt64)] = []
        var pending = indices[...]
        while !pending.isEmpty {
            let batch = pending.map { (index: $0, value: UInt64(0)) }
            let (done, values) = try transferMSRs(batch, request: CKVM_GET_MSRS, name: "KVM_GET_MSRS")
            result += values.prefix(done)
            pending = pending.dropFirst(done + 1) // done < count: entry `done` failed, skip it
        }
        return result
    }

    /// Writes `entries`; returns how many were accepted (the rest were skipped individually).
    @discardableResult
    public func setMSRs(_ entries: [(index: UInt32, value: UInt64)]) throws(KVMError) -> Int {
        var total = 0
        var pending = entries[...]
        while !pending.isEmpty {
            let (done, _) = try transferMSRs(Array(pending), request: CKVM_SET_MSRS, name: "KVM_SET_MSRS")
            total += done
            pending = pending.dropFirst(done + 1)
        }
        return total
    }

    /// One KVM_GET_MSRS/KVM_SET_MSRS call: returns the count processed and the (possibly updated) entries.
    private func transferMSRs(_ entries: [(index: UInt32, value: UInt64)], request: UInt,
                              name: String) throws(KVMError) -> (Int, [(index: UInt32, value: UInt64)]) {
        let buffer = FlexibleArrayBuffer<kvm_msr_entry>(entriesOffset: CKVM_MSRS_ENTRIES_OFFSET, count: entries.count)
        buffer.headerCount = UInt32(entries.count)
        for (i, entry) in entries.enumerated() {
            buffer.entries[i].index = entry.index
            buffer.entries[i].data = entry.value
        }
        let done = Int(try ioctlRaw(fd, request, buffer.raw, name))
        let out = (0..<entries.count).map { (index: buffer.entries[$0].index, value: buffer.entries[$0].data) }
        return (done, out)
    }
}
