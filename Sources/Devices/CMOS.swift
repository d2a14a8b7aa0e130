import Synchronization

/// Everything a guest can observe of the `CMOS` RTC and its RAM, as plain data.
public struct CMOSState: Codable, Sendable, Equatable {
    /// Last byte written to port 0x70: register index in bits 0-6, NMI disable in bit 7.
    public var index: UInt8 = 0
    /// The 128 bytes of CMOS RAM, registers A-C included. The clock registers hold values only
    /// while the guest is setting the clock (register B's SET bit); otherwise they are computed.
    public var ram: [UInt8] = Array(repeating: 0, count: CMOS.ramSize)
    /// Guest RTC time minus host UTC, in seconds: what the guest set the clock to. Kept as an
    /// offset so that a restored guest's clock keeps running with the host's.
    public var clockOffset: Int64 = 0

    public init() {}
}

/// The MC146818 real-time clock and CMOS RAM at ports 0x70 (index) and 0x71 (data).
///
/// The clock is the host's UTC clock read on every access, shown in BCD or binary and 12- or 24-hour
/// form as register B asks; the guest may set it (the difference is kept as an offset). UIP is
/// raised for the last 244 µs of each second, as the chip does, so that guests which wait for it
/// do not spin. No periodic, alarm or update interrupts are generated (register C stays 0).
/// The memory-size bytes firmware and old loaders read are filled in at creation, as QEMU does.
/// Cloud Hypervisor quirk kept for compatibility: writing 0 to register 0x0F with the NMI bit set
/// (index byte 0x8F, Linux's `reboot=bios` path) requests a VM reset.
public final class CMOS: BusDevice, Snapshottable {
    public static let stateVersion = 1
    public static let base: UInt64 = 0x70
    public static let size: UInt64 = 2
    public static let ramSize = 128

    private let control: (any VMControl)?
    private let clock: HostClock
    private let inner: Mutex<CMOSState>

    /// - Parameters:
    ///   - memoryBelow4G: bytes of guest RAM below the 32-bit MMIO hole.
    ///   - memoryAbove4G: bytes of guest RAM from 4 GiB up.
    ///   - control: receives the CMOS reset request (none when nil).
    public init(memoryBelow4G: UInt64, memoryAbove4G: UInt64, control: (any VMControl)? = nil,
                clock: HostClock = .system) {
        self.control = control
        self.clock = clock
        var state = CMOSState()
        state.ram[RTC.registerA] = 0x26  // 32.768 kHz time base, 1024 Hz rate
        state.ram[RTC.registerB] = RTC.b24Hour
        Self.storeMemorySize(below4G: memoryBelow4G, above4G: memoryAbove4G, into: &state.ram)
        inner = Mutex(state)
    }

    private static func storeMemorySize(below4G: UInt64, above4G: UInt64, into ram: inout [UInt8]) {
        func put(_ value: UInt64, at offset: Int, bytes: Int) {
            for i in 0..<bytes { ram[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        let kib: UInt64 = 1024, mib = kib * kib
        put(min(below4G / kib, 640), at: 0x15, bytes: 2)                     // base memory, KiB
        let extended = min(below4G > mib ? (below4G - mib) / kib : 0, 0xFFFF)  // 1 MiB-65 MiB, KiB
        put(extended, at: 0x17, bytes: 2)
        put(extended, at: 0x30, bytes: 2)
        let above16M = min(below4G > 16 * mib ? (below4G - 16 * mib) / (64 * kib) : 0, 0xFFFF)
        put(above16M, at: 0x34, bytes: 2)                                    // 16 MiB-4 GiB, 64 KiB
        put(min(above4G / (64 * kib), 0xFF_FFFF), at: 0x5B, bytes: 3)       // above 4 GiB, 64 KiB
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for i in data.indices {
            let now = clock.realtime()
            data[i] = inner.withLock { $0.read(offset + UInt64(i), now: now) }
        }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        for i in data.indices {
            let now = clock.realtime()
            let wantsReset = inner.withLock { $0.write(offset + UInt64(i), data[i], now: now) }
            if wantsReset { control?.requestReset() }
        }
    }

    public func saveState() -> CMOSState { inner.withLock { $0 } }

    public func restoreState(_ state: CMOSState) throws(DeviceStateError) {
        guard state.ram.count == Self.ramSize else {
            throw .invalid(device: "cmos", reason: "\(state.ram.count) bytes of RAM instead of \(Self.ramSize)")
        }
        inner.withLock { $0 = state }
    }
}

/// MC146818 register indices and bits.
enum RTC {
    static let seconds = 0x00
    static let minutes = 0x02
    static let hours = 0x04
    static let weekday = 0x06
    static let dayOfMonth = 0x07
    static let month = 0x08
    static let year = 0x09
    static let registerA = 0x0A
    static let registerB = 0x0B
    static let registerC = 0x0C
    static let registerD = 0x0D
    static let shutdownStatus = 0x0F
    /// Where QEMU and Cloud Hypervisor (and ACPI's FADT.CENTURY as they fill it) keep the century.
    static let century = 0x32
    static let clockRegisters: Set<Int> = [seconds, minutes, hours, weekday, dayOfMonth, month, year, century]

    static let aUpdateInProgress: UInt8 = 0x80
    static let bSet: UInt8 = 0x80
    static let bUpdateInterrupt: UInt8 = 0x10
    static let bBinary: UInt8 = 0x04
    static let b24Hour: UInt8 = 0x02
    static let dValidRAM: UInt8 = 0x80
    static let indexMask: UInt8 = 0x7F
    static let nmiDisable: UInt8 = 0x80

    /// The chip holds UIP for 244 µs (8 cycles of 32.768 kHz) before the registers change.
    static let updateHoldNanoseconds: Int64 = 8 * 1_000_000_000 / 32_768
}

extension CMOSState {
    private var binary: Bool { ram[RTC.registerB] & RTC.bBinary != 0 }
    private var twentyFourHour: Bool { ram[RTC.registerB] & RTC.b24Hour != 0 }
    private var setting: Bool { ram[RTC.registerB] & RTC.bSet != 0 }

    mutating func read(_ offset: UInt64, now: WallTime) -> UInt8 {
        guard offset == 1 else { return offset == 0 ? index : 0xFF }
        let register = Int(index & RTC.indexMask)
        switch register {
        case _ where RTC.clockRegisters.contains(register) && !setting:
            let time = CivilTime(epochSeconds: now.seconds &+ clockOffset)
            return encoded(time)[register] ?? 0
        case RTC.registerA:
            let updating = !setting && now.nanoseconds >= 1_000_000_000 - RTC.updateHoldNanoseconds
            return ram[register] & ~RTC.aUpdateInProgress | (updating ? RTC.aUpdateInProgress : 0)
        case RTC.registerC:
            defer { ram[register] = 0 }  // reading C acknowledges the flags
            return ram[register]
        case RTC.registerD:
            return RTC.dValidRAM
        default:
            return ram[register]
        }
    }

    /// Returns true when the write asks for a VM reset.
    mutating func write(_ offset: UInt64, _ value: UInt8, now: WallTime) -> Bool {
        guard offset == 1 else {
            if offset == 0 { index = value }
            return false
        }
        if index == RTC.nmiDisable | UInt8(RTC.shutdownStatus), value == 0 { return true }
        let register = Int(index & RTC.indexMask)
        switch register {
        case _ where RTC.clockRegisters.contains(register):
            if setting {
                ram[register] = value  // held until SET is cleared
            } else {
                hold(now)
                ram[register] = value
                clockOffset = heldTime.epochSeconds - now.seconds
            }
        case RTC.registerA:
            ram[register] = value & ~RTC.aUpdateInProgress
        case RTC.registerB:
            let wasSetting = setting
            // Setting SET stops updates and with them the update-ended interrupt enable.
            ram[register] = value & RTC.bSet != 0 ? value & ~RTC.bUpdateInterrupt : value
            if !wasSetting && setting { hold(now) }
            if wasSetting && !setting { clockOffset = heldTime.epochSeconds - now.seconds }
        case RTC.registerC, RTC.registerD:
            break  // read-only
        default:
            ram[register] = value
        }
        return false
    }

    /// Freezes the current guest time into the clock registers (SET mode, or a field write).
    private mutating func hold(_ now: WallTime) {
        for (register, value) in encoded(CivilTime(epochSeconds: now.seconds &+ clockOffset)) {
            ram[register] = value
        }
    }

    /// The time the clock registers hold, read in the current data mode.
    private var heldTime: CivilTime {
        let hourByte = ram[RTC.hours]
        var hour = decode(hourByte & 0x7F)
        if !twentyFourHour { hour = hour % 12 + (hourByte & 0x80 != 0 ? 12 : 0) }
        let year = decode(ram[RTC.century]) * 100 + decode(ram[RTC.year])
        return CivilTime(year: year, month: decode(ram[RTC.month]), day: decode(ram[RTC.dayOfMonth]),
                         hour: hour, minute: decode(ram[RTC.minutes]), second: decode(ram[RTC.seconds]))
    }

    /// The clock registers for `time`, in the data mode register B selects.
    private func encoded(_ time: CivilTime) -> [Int: UInt8] {
        var hourByte: UInt8
        if twentyFourHour {
            hourByte = encode(time.hour)
        } else {
            hourByte = encode(time.hour % 12 == 0 ? 12 : time.hour % 12)
            if time.hour >= 12 { hourByte |= 0x80 }
        }
        return [
            RTC.seconds: encode(time.second),
            RTC.minutes: encode(time.minute),
            RTC.hours: hourByte,
            RTC.weekday: encode(time.weekday + 1),  // 1 = Sunday
            RTC.dayOfMonth: encode(time.day),
            RTC.month: encode(time.month),
            RTC.year: encode(time.year % 100),
            RTC.century: encode(time.year / 100 % 100),
        ]
    }

    private func encode(_ value: Int) -> UInt8 {
        // Odd guest-written or restored values must not trap: keep what fits in the field.
        let value = max(0, value)
        return binary ? UInt8(truncatingIfNeeded: value) : UInt8((value % 100 / 10) << 4 | value % 10)
    }

    private func decode(_ value: UInt8) -> Int {
        binary ? Int(value) : Int(value >> 4) * 10 + Int(value & 0x0F)
    }
}
