/// The ACPI power-management port has no guest-visible state; the struct exists so that every
/// device snapshots the same way.
public struct AcpiPMState: Codable, Sendable, Equatable {
    public init() {}
}

/// Cloud Hypervisor's ACPI shutdown/reset port (0x600, 2 bytes): the FADT's hardware-reduced sleep
/// control register and reset register both point here.
///
/// Writing the reset value 1 resets the VM; writing SLP_EN with SLP_TYP 5 (the `_S5` package value
/// the DSDT advertises, so the byte 0x34) powers it off. Other values, such as other sleep states,
/// are ignored. Reads return 0 (sleep status: never woken).
public final class AcpiPM: BusDevice, Snapshottable {
    public static let stateVersion = 1
    public static let base: UInt64 = 0x600
    public static let size: UInt64 = 2

    public static let resetValue: UInt8 = 1
    public static let sleepEnable: UInt8 = 0x20
    public static let sleepTypeShift: UInt8 = 2
    public static let sleepTypeMask: UInt8 = 0x07
    /// SLP_TYP of S5 (soft off) in our DSDT.
    public static let s5SleepType: UInt8 = 5

    private let control: any VMControl

    public init(control: any VMControl) {
        self.control = control
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        data.fill(with: 0)
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        // Only the first byte is the register (the FADT declares it 8 bits wide).
        guard offset == 0, let value = data.first else { return }
        if value == Self.resetValue {
            control.requestReset()
        } else if value & Self.sleepEnable != 0,
                  value >> Self.sleepTypeShift & Self.sleepTypeMask == Self.s5SleepType {
            control.requestShutdown()
        }
    }

    public func saveState() -> AcpiPMState { AcpiPMState() }
    public func restoreState(_ state: AcpiPMState) throws(DeviceStateError) {}
}
