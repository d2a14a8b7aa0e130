/// An x86 segment descriptor, as stored in a GDT and as the hypervisor's segment registers want it
/// (KVM's `kvm_segment` takes exactly these fields, with the limit already scaled by the granularity).
public struct SegmentDescriptor: Sendable, Equatable {
    public var base: UInt32
    /// The limit in bytes: the 20-bit field, scaled to 4 KiB pages when `granularity` is set.
    public var limit: UInt32
    /// Type nibble: 0xB = execute/read code (accessed), 0x3 = read/write data (accessed), 0xB with `system` = busy TSS.
    public var type: UInt8
    /// True for code/data (the S bit); false for system descriptors such as a TSS.
    public var codeOrData: Bool
    public var dpl: UInt8
    public var present: Bool
    public var available: Bool
    /// 64-bit code segment (L).
    public var long: Bool
    /// 32-bit default operand size (D/B).
    public var defaultBig: Bool
    public var granularity: Bool

    /// Decodes the 8-byte GDT form.
    public init(raw: UInt64) {
        let rawLimit = UInt32(raw & 0xFFFF) | UInt32((raw >> 48) & 0xF) << 16
        base = UInt32((raw >> 16) & 0xFF_FFFF) | UInt32((raw >> 56) & 0xFF) << 24
        let access = UInt8((raw >> 40) & 0xFF)
        type = access & 0xF
        codeOrData = access & 0x10 != 0
        dpl = (access >> 5) & 3
        present = access & 0x80 != 0
        let flags = UInt8((raw >> 52) & 0xF)
        available = flags & 1 != 0
        long = flags & 2 != 0
        defaultBig = flags & 4 != 0
        granularity = flags & 8 != 0
        limit = granularity ? (rawLimit << 12) | 0xFFF : rawLimit
    }

    /// The 8-byte GDT form.
    public var raw: UInt64 {
        let rawLimit = UInt64(granularity ? limit >> 12 : limit) & 0xF_FFFF
        let access = UInt64(type & 0xF) | (codeOrData ? 0x10 : 0) | UInt64(dpl & 3) << 5 | (present ? 0x80 : 0)
        let flags = (available ? 1 : 0) | (long ? 2 : 0) | (defaultBig ? 4 : 0) | (granularity ? 8 : 0) as UInt64
        return (rawLimit & 0xFFFF) | (UInt64(base) & 0xFF_FFFF) << 16 | access << 40
            | (rawLimit >> 16) << 48 | flags << 52 | (UInt64(base) >> 24) << 56
    }
}

/// A segment register's visible selector plus the hidden descriptor the CPU caches for it.
public struct SegmentRegister: Sendable, Equatable {
    public var selector: UInt16
    public var descriptor: SegmentDescriptor

    public init(selector: UInt16, descriptor: SegmentDescriptor) {
        self.selector = selector
        self.descriptor = descriptor
    }
}

/// Base and limit of a GDT or IDT, as loaded into GDTR/IDTR.
public struct DescriptorTable: Sendable, Equatable {
    public var base: UInt64
    public var limit: UInt16
}
