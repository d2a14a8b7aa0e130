import Memory

/// The Multiple APIC Description Table (revision 5, ACPI 6.3): one Processor Local APIC per possible
/// vCPU, KVM's in-kernel IOAPIC, and the interrupt source overrides. The Debian cloud kernel has no
/// MP-table parser, so this is the only way it finds its other vCPUs.
enum MADT {
    static let revision: UInt8 = 5
    static let flagPCATCompat: UInt32 = 1
    static let localAPICEnabled: UInt32 = 1
    /// ACPI 6.3: not enabled now, but may be brought online (hotplug).
    static let localAPICOnlineCapable: UInt32 = 2
    /// KVM's in-kernel IOAPIC resets with id 0; the table says the same so nothing has to rewrite it.
    static let ioapicID: UInt8 = 0

    static func bytes(config: ACPIConfig) -> [UInt8] {
        var t = SystemDescriptionTable(signature: "APIC", revision: revision, length: 44, config: config)
        t.bytes.put(UInt32(truncatingIfNeeded: GuestLayout.lapicStart), at: 36)
        t.bytes.put(flagPCATCompat, at: 40)
        for cpu in 0..<config.maxCPUs {
            t.bytes.append([0, 8, UInt8(cpu), UInt8(cpu)])      // type 0, length, ACPI processor UID, APIC id
            t.bytes.append(cpu < config.bootCPUs ? localAPICEnabled : localAPICOnlineCapable)
        }
        t.bytes.append([1, 12, ioapicID, 0])                     // type 1, length, id, reserved
        t.bytes.append(UInt32(truncatingIfNeeded: GuestLayout.ioapicStart))
        t.bytes.append(UInt32(0))                                // GSI base
        for o in config.interruptOverrides {
            t.bytes.append([2, 10, 0, o.source])                 // type 2, length, bus ISA, source IRQ
            t.bytes.append(o.gsi)
            t.bytes.append(o.flags)
        }
        return t.finished()
    }
}
