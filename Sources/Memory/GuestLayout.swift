/// The x86-64 guest physical address map, shared by the loaders, ACPI, E820 and the device manager.
///
/// It follows Cloud Hypervisor's layout so that guests (and their users) see the same machine:
/// RAM below the 32-bit MMIO hole at 3 GiB, the rest above 4 GiB.
public enum GuestLayout {
    /// End of the low RAM that real-mode software may use (the 640 KiB mark).
    public static let lowRAMEnd: UInt64 = 0xA_0000
    /// Start of high RAM: everything from here up to the 32-bit hole is RAM.
    public static let highRAMStart: UInt64 = 0x10_0000
    /// PVH `hvm_start_info` (CH places it at 0x6000).
    public static let pvhInfoStart: UInt64 = 0x6000
    /// Linux boot protocol zero page (`boot_params`), as CH.
    public static let zeroPageStart: UInt64 = 0x7000
    /// Boot GDT and IDT for the bzImage path.
    public static let bootGDTStart: UInt64 = 0x500
    public static let bootIDTStart: UInt64 = 0x520
    /// Identity page tables for the bzImage long-mode entry (PML4, PDPT, PD: 3 pages).
    public static let pml4Start: UInt64 = 0x9000
    /// Initial stack pointer for the boot vCPU.
    public static let bootStackPointer: UInt64 = 0x8ff0
    /// Kernel command line (CH: 0x20000), at most `cmdlineMaxSize` bytes with the NUL.
    public static let cmdlineStart: UInt64 = 0x2_0000
    public static let cmdlineMaxSize: UInt64 = 0x1_0000
    /// ACPI RSDP, followed by the other tables (CH: 0xA0000, in the legacy hole, reported as reserved).
    public static let rsdpStart: UInt64 = 0xA_0000
    public static let acpiTablesEnd: UInt64 = 0xF_0000
    /// The 32-bit MMIO hole: no RAM between these addresses.
    public static let mmioHoleStart: UInt64 = 0xC000_0000
    public static let mmioHoleEnd: UInt64 = 0x1_0000_0000
    /// PCI MMCONFIG (ECAM) window for segment 0 (256 buses × 1 MiB).
    public static let pciMMConfigStart: UInt64 = 0xE800_0000
    public static let pciMMConfigSize: UInt64 = 0x1000_0000
    /// Where 32-bit PCI BARs are allocated from (up to the ECAM window).
    public static let pci32BitMMIOStart: UInt64 = 0xC000_0000
    /// Local APIC and IOAPIC register windows.
    public static let ioapicStart: UInt64 = 0xFEC0_0000
    public static let lapicStart: UInt64 = 0xFEE0_0000
    /// KVM needs 3 pages for the TSS and one for the EPT identity map, inside the hole but out of the way.
    public static let kvmTSSAddress: UInt64 = 0xFFFB_D000
    public static let kvmIdentityMapAddress: UInt64 = 0xFFFB_C000
    /// RAM above the hole starts here.
    public static let ram64BitStart: UInt64 = 0x1_0000_0000

    /// Splits `size` bytes of guest RAM into the regions the guest sees: below the hole, then above 4 GiB.
    public static func ramRegions(size: UInt64) -> [(base: UInt64, size: UInt64)] {
        if size <= mmioHoleStart { return [(0, size)] }
        return [(0, mmioHoleStart), (ram64BitStart, size - mmioHoleStart)]
    }
}
