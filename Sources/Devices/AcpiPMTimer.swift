import Synchronization

/// Where the `AcpiPMTimer` counter stands, as plain data.
public struct AcpiPMTimerState: Codable, Sendable, Equatable {
    /// Ticks counted since the VM started (not wrapped to 32 bits), at the moment of saving.
    public var ticks: UInt64 = 0

    public init(ticks: UInt64 = 0) {
        self.ticks = ticks
    }
}

/// The ACPI power-management timer (port 0x608, 4 bytes): a free-running 32-bit counter at
/// 3.579545 MHz (the FADT sets TMR_VAL_EXT), read-only, derived from the host's monotonic clock.
///
/// The counter is `base + elapsed × f`, so saving keeps `ticks` and restoring continues from there:
/// the guest never sees it go backwards, whatever the new host's clock says. No overflow interrupt
/// (TMR_STS/TMR_EN belong to the PM1 event block, which a hardware-reduced platform does not have).
public final class AcpiPMTimer: BusDevice, Snapshottable {
    public static let stateVersion = 1
    public static let base: UInt64 = 0x608
    public static let size: UInt64 = 4
    public static let frequency: UInt64 = 3_579_545

    /// The counter is `baseTicks` at monotonic time `originNanoseconds`.
    private struct Origin {
        var baseTicks: UInt64
        var originNanoseconds: UInt64
    }

    private let clock: HostClock
    private let origin: Mutex<Origin>

    public init(clock: HostClock = .system) {
        self.clock = clock
        origin = Mutex(Origin(baseTicks: 0, originNanoseconds: clock.monotonicNanoseconds()))
    }

    /// The full-width counter now.
    public var ticks: UInt64 {
        let now = clock.monotonicNanoseconds()
        let o = origin.withLock { $0 }
        let elapsed = now &- o.originNanoseconds
        // Split into seconds and the rest so that the multiplication cannot overflow.
        let seconds = elapsed / 1_000_000_000, rest = elapsed % 1_000_000_000
        return o.baseTicks &+ seconds &* Self.frequency &+ rest &* Self.frequency / 1_000_000_000
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        let counter = UInt32(truncatingIfNeeded: ticks)
        for i in data.indices {
            let byte = offset + UInt64(i)
            data[i] = byte < Self.size ? UInt8(truncatingIfNeeded: counter >> (8 * byte)) : 0xFF
        }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {}  // read-only

    public func saveState() -> AcpiPMTimerState { AcpiPMTimerState(ticks: ticks) }

    public func restoreState(_ state: AcpiPMTimerState) throws(DeviceStateError) {
        let now = clock.monotonicNanoseconds()
        origin.withLock { $0 = Origin(baseTicks: state.ticks, originNanoseconds: now) }
    }
}

/// The name the VMM uses for the PM timer.
public typealias PMTimer = AcpiPMTimer
