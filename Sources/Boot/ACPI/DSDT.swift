/// The Differentiated System Description Table: the devices firmware would describe on a PC, written
/// directly in AML.
///
/// \_SB_.PCI0  PCIe host bridge: segment, bus range, I/O and MMIO windows (+ _PRT when INTx is routed)
/// \_SB_.MBRD  motherboard resources: reserves the ECAM window, without which Linux refuses MMCONFIG
/// \_SB_.COM1  the 16550 UART
/// \_SB_.PWRB  the power button (there is no fixed power button on a hardware-reduced platform)
/// \_SB_.GED0  Generic Event Device: its interrupt means "power button pressed"
/// \_S5_       soft-off sleep type
enum DSDT {
    static let revision: UInt8 = 2   // 2+: 64-bit AML integers

    static func bytes(config: ACPIConfig, pci64BitWindow: AddressWindow) -> [UInt8] {
        var t = SystemDescriptionTable(signature: "DSDT", revision: revision, config: config)
        t.bytes.append(aml(config, pci64BitWindow: pci64BitWindow))
        return t.finished()
    }

    static func aml(_ c: ACPIConfig, pci64BitWindow: AddressWindow) -> [UInt8] {
        AML.scope("\\_SB_", [
            pciHostBridge(c, pci64BitWindow), motherboardResources(c), serial(c), powerButton, genericEventDevice(c),
        ])
            + AML.name("_S5_", AML.package([AML.integer(UInt64(ACPIPlatform.s5SleepType)), AML.integer(0)]))
    }

    static func pciHostBridge(_ c: ACPIConfig, _ w64: AddressWindow) -> [UInt8] {
        let w32 = c.pci32BitWindow
        var terms = [
            AML.name("_HID", AML.eisaID("PNP0A08")),
            AML.name("_CID", AML.eisaID("PNP0A03")),
            AML.name("_UID", AML.integer(UInt64(c.pciSegment))),
            AML.name("_SEG", AML.integer(UInt64(c.pciSegment))),
            AML.name("_BBN", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([
                .wordBusNumber(min: 0, max: UInt16(c.pciMMConfig.size >> 20) - 1),
                .io(min: 0xCF8, max: 0xCF8, alignment: 1, length: 8),
                .wordIO(min: 0x0000, max: 0x0CF7),
                .wordIO(min: 0x0D00, max: 0xFFFF),
                .dwordMemory(min: UInt32(w32.base), max: UInt32(w32.last), cacheable: false),
                .qwordMemory(min: w64.base, max: w64.last, cacheable: true),
            ])),
        ]
        if !c.pciINTxGSIs.isEmpty {
            // One entry per slot and pin: Package { address (slot << 16 | 0xFFFF), pin, source 0, GSI }.
            var routes: [[UInt8]] = []
            for (slot, gsi) in c.pciINTxGSIs.enumerated() {
                for pin in 0..<UInt64(4) {
                    routes.append(AML.package([AML.integer(UInt64(slot) << 16 | 0xFFFF), AML.integer(pin),
                                               AML.integer(0), AML.integer(UInt64(gsi))]))
                }
            }
            terms.append(AML.name("_PRT", AML.package(routes)))
        }
        return AML.device("PCI0", terms)
    }

    static func motherboardResources(_ c: ACPIConfig) -> [UInt8] {
        AML.device("MBRD", [
            AML.name("_HID", AML.eisaID("PNP0C02")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([
                .memory32Fixed(base: UInt32(c.pciMMConfig.base), length: UInt32(c.pciMMConfig.size)),
            ])),
        ])
    }

    static func serial(_ c: ACPIConfig) -> [UInt8] {
        AML.device("COM1", [
            AML.name("_HID", AML.eisaID("PNP0501")),
            AML.name("_UID", AML.integer(1)),
            AML.name("_CRS", AML.resourceTemplate([
                .io(min: c.serialPort, max: c.serialPort, alignment: 1, length: 8),
                .irq([c.serialIRQ]),
            ])),
        ])
    }

    static let powerButton = AML.device("PWRB", [
        AML.name("_HID", AML.eisaID("PNP0C0C")),
        AML.name("_UID", AML.integer(0)),
    ])

    /// The VMM pulses `gedGSI` (edge, active high) to press the power button; _EVT (called with the GSI)
    /// forwards it as Notify(PWRB, 0x80), which Linux turns into KEY_POWER (systemd-logind powers off).
    static func genericEventDevice(_ c: ACPIConfig) -> [UInt8] {
        AML.device("GED0", [
            AML.name("_HID", AML.string("ACPI0013")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([
                .interrupt(gsis: [c.gedGSI], edge: true, activeLow: false, shared: false),
            ])),
            AML.method("_EVT", arguments: 1, serialized: true, [
                AML.notify("\\_SB_.PWRB", ACPIPlatform.powerButtonNotify),
            ]),
        ])
    }
}
