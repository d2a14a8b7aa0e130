/// The Fixed ACPI Description Table, revision 6 (ACPI 6.3), describing a hardware-reduced platform:
/// no SCI, no PM1 blocks or GPEs; power-off and reset through the sleep control / reset registers,
/// and a 32-bit PM timer.
enum FADT {
    static let length = 276
    static let revision: UInt8 = 6
    static let minorVersion: UInt8 = 3

    static let flagTimerValueExtended: UInt32 = 1 << 8   // TMR_VAL_EXT: 32-bit PM timer
    static let flagResetRegister: UInt32 = 1 << 10       // RESET_REG_SUP
    static let flagHardwareReduced: UInt32 = 1 << 20     // HW_REDUCED_ACPI
    /// IAPC_BOOT_ARCH: no VGA. (No 8042 flag: Linux needs no i8042 driver to reset through port 0x64.)
    static let bootArchVGANotPresent: UInt16 = 1 << 2

    static func bytes(dsdt: UInt64, config: ACPIConfig) -> [UInt8] {
        var t = SystemDescriptionTable(signature: "FACP", revision: revision, length: length, config: config)
        t.bytes.put(bootArchVGANotPresent, at: 109)
        t.bytes.put(flagHardwareReduced | flagResetRegister | flagTimerValueExtended, at: 112)
        t.bytes.put(GenericAddress.io(port: ACPIPlatform.resetPort, bitWidth: 8, accessSize: 1), at: 116)
        t.bytes[128] = ACPIPlatform.resetValue
        t.bytes[131] = minorVersion
        t.bytes.put(dsdt, at: 140)                                  // X_DSDT (the 32-bit DSDT stays 0)
        t.bytes.put(GenericAddress.io(port: ACPIPlatform.pmTimerPort, bitWidth: 32, accessSize: 3), at: 208)
        t.bytes.put(GenericAddress.io(port: ACPIPlatform.sleepControlPort, bitWidth: 8, accessSize: 1), at: 244)
        t.bytes.put(GenericAddress.io(port: ACPIPlatform.sleepStatusPort, bitWidth: 8, accessSize: 1), at: 256)
        t.bytes.put(ascii: config.hypervisorVendor, width: 8, at: 268)
        return t.finished()
    }
}
