/// One CPUID leaf as KVM sees it (`kvm_cpuid_entry2` without padding), in a form that can be filtered,
/// compared and saved in a snapshot.
public struct CPUIDEntry: Sendable, Equatable, Hashable, Codable {
    public var function: UInt32
    public var index: UInt32
    /// KVM_CPUID_FLAG_* (e.g. SIGNIFCANT_INDEX: `index` selects a sub-leaf).
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0,
                eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }

    public init(_ raw: kvm_cpuid_entry2) {
        self.init(function: raw.function, index: raw.index, flags: raw.flags,
                  eax: raw.eax, ebx: raw.ebx, ecx: raw.ecx, edx: raw.edx)
    }

    public var raw: kvm_cpuid_entry2 {
        var entry = kvm_cpuid_entry2()
        entry.function = function
        entry.index = index
        entry.flags = flags
        entry.eax = eax
        entry.ebx = ebx
        entry.ecx = ecx
        entry.edx = edx
        return entry
    }
}
