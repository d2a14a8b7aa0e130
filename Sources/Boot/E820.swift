import Memory

/// One entry of the BIOS-style memory map that both boot paths hand the kernel.
public struct E820Entry: Sendable, Equatable {
    public static let ram: UInt32 = 1
    public static let reserved: UInt32 = 2

    public var address: UInt64
    public var size: UInt64
    public var type: UInt32

    public init(address: UInt64, size: UInt64, type: UInt32) {
        self.address = address
        self.size = size
        self.type = type
    }

    public var end: UInt64 { address + size }
}

public enum E820 {
    /// The guest's RAM as the kernel may use it: 0–640 KiB, 1 MiB to the end of the low region, and each
    /// region above 4 GiB. The 640 KiB–1 MiB hole (ACPI tables, legacy ROM area) and the 32-bit MMIO hole
    /// are simply absent, as in Cloud Hypervisor: Linux treats what is not listed as not RAM.
    public static func map(for memory: GuestMemory) -> [E820Entry] {
        var entries: [E820Entry] = []
        for region in memory.regions.sorted(by: { $0.guestBase < $1.guestBase }) {
            // Cut [lowRAMEnd, highRAMStart) out of the region.
            let pieces: [(UInt64, UInt64)] = [
                (region.guestBase, min(region.guestEnd, GuestLayout.lowRAMEnd)),
                (max(region.guestBase, GuestLayout.highRAMStart), region.guestEnd),
            ]
            for (start, end) in pieces where start < end {
                entries.append(E820Entry(address: start, size: end - start, type: E820Entry.ram))
            }
        }
        return entries
    }
}
