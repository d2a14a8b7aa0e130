import Memory

/// The GDT both entry paths start with, at `GuestLayout.bootGDTStart` (4 entries: exactly the 32 bytes
/// before the boot IDT), plus an empty IDT at `GuestLayout.bootIDTStart`.
///
/// One table serves both paths: PVH enters in 32-bit protected mode (CS = 0x08), Linux's 64-bit boot
/// protocol wants `__BOOT_CS` = 0x10 and `__BOOT_DS` = 0x18 (Documentation/arch/x86/boot.rst), all flat.
/// The guest installs its own GDT and IDT before it reloads any segment or takes an interrupt.
public enum BootGDT {
    public static let code32Selector: UInt16 = 0x08
    public static let code64Selector: UInt16 = 0x10
    public static let dataSelector: UInt16 = 0x18

    /// Flat 4 GiB execute/read, 32-bit.
    public static let code32 = SegmentDescriptor(raw: 0x00CF_9B00_0000_FFFF)
    /// Flat execute/read, 64-bit (L set, D clear).
    public static let code64 = SegmentDescriptor(raw: 0x00AF_9B00_0000_FFFF)
    /// Flat 4 GiB read/write.
    public static let data = SegmentDescriptor(raw: 0x00CF_9300_0000_FFFF)
    /// A busy TSS for TR, which VM entry requires to be valid. It is not in the GDT: nothing loads TR
    /// from it before the guest has installed its own TSS, so selector 0 is used.
    public static let task = SegmentDescriptor(raw: 0x0000_8B00_0000_0067)

    /// The entries written to guest memory, indexed by selector / 8.
    public static let entries: [UInt64] = [0, code32.raw, code64.raw, data.raw]

    public static var gdt: DescriptorTable {
        DescriptorTable(base: GuestLayout.bootGDTStart, limit: UInt16(entries.count * 8 - 1))
    }

    /// An empty IDT: the guest runs with interrupts off until it has its own.
    public static var idt: DescriptorTable { DescriptorTable(base: GuestLayout.bootIDTStart, limit: 7) }

    static func write(into memory: GuestMemory) throws {
        for (index, entry) in entries.enumerated() {
            try memory.store(entry, at: GuestLayout.bootGDTStart + UInt64(index * 8))
        }
        try memory.store(UInt64(0), at: GuestLayout.bootIDTStart)
    }
}
