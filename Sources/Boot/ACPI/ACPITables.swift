import Memory

/// The ACPI tables, written into guest memory from `GuestLayout.rsdpStart` (0xA0000, in the legacy
/// hole, which the E820 map leaves out so the guest never reuses it):
/// RSDP → XSDT → FACP (→ DSDT), APIC, MCFG.
public struct ACPITables {
    /// Tables start 16-byte aligned.
    static let alignment: UInt64 = 16

    /// Builds and writes all tables; returns the RSDP's address (for the zero page / start_info).
    @discardableResult
    public static func build(into memory: GuestMemory, config: ACPIConfig) throws -> UInt64 {
        try config.validate(memory: memory)

        let rsdp = GuestLayout.rsdpStart
        var next = (rsdp + UInt64(RSDP.size)).alignedUp(to: alignment)
        func place(_ length: Int) -> UInt64 {
            defer { next = (next + UInt64(length)).alignedUp(to: alignment) }
            return next
        }
        let dsdt = DSDT.bytes(config: config, pci64BitWindow: config.effective64BitWindow(for: memory))
        let madt = MADT.bytes(config: config)
        let mcfg = MCFG.bytes(config: config)
        let xsdtAddress = place(XSDT.length(entries: 3))
        let fadtAddress = place(FADT.length)
        let dsdtAddress = place(dsdt.count)
        let madtAddress = place(madt.count)
        let mcfgAddress = place(mcfg.count)
        guard next <= GuestLayout.acpiTablesEnd else {
            throw ACPIError.tablesTooLarge(end: next, limit: GuestLayout.acpiTablesEnd)
        }
        let fadt = FADT.bytes(dsdt: dsdtAddress, config: config)
        let xsdt = XSDT.bytes(tables: [fadtAddress, madtAddress, mcfgAddress], config: config)

        do {
            try memory.fill(0, at: rsdp, count: next - rsdp)
            try memory.write(RSDP.bytes(xsdt: xsdtAddress, oemID: config.oemID), at: rsdp)
            try memory.write(xsdt, at: xsdtAddress)
            try memory.write(fadt, at: fadtAddress)
            try memory.write(dsdt, at: dsdtAddress)
            try memory.write(madt, at: madtAddress)
            try memory.write(mcfg, at: mcfgAddress)
        } catch let error as MemoryError {
            throw ACPIError.memory(error)
        }
        return rsdp
    }
}
