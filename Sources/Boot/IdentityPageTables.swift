import Memory

/// Page tables for the 64-bit Linux entry, which must start with paging on and the kernel, zero page
/// and command line identity-mapped: PML4 → PDPT → one PD of 512 2 MiB pages = the first 1 GiB.
public enum IdentityPageTables {
    /// What CR3 gets.
    public static let pml4 = GuestLayout.pml4Start
    static let pdpt = GuestLayout.pml4Start + 0x1000
    static let pd = GuestLayout.pml4Start + 0x2000
    /// How much is mapped, from address 0.
    public static let mappedSize: UInt64 = 1 << 30

    static func write(into memory: GuestMemory) throws {
        let present: UInt64 = 1, writable: UInt64 = 2, large: UInt64 = 0x80
        try memory.fill(0, at: pml4, count: 0x3000)
        try memory.store(pdpt | present | writable, at: pml4)
        try memory.store(pd | present | writable, at: pdpt)
        for i in 0..<UInt64(512) {
            try memory.store((i << 21) | present | writable | large, at: pd + i * 8)
        }
    }
}
