@testable import Devices
import Foundation
import XCTest

final class CMOSTests: XCTestCase {
    let index: UInt64 = 0, dataPort: UInt64 = 1

    func readRegister(_ rtc: CMOS, _ register: UInt8) -> UInt8 {
        outb(rtc, index, register)
        return inb(rtc, dataPort)
    }

    func writeRegister(_ rtc: CMOS, _ register: UInt8, _ value: UInt8) {
        outb(rtc, index, register)
        outb(rtc, dataPort, value)
    }

    func bcd(_ v: UInt8) -> Int { Int(v >> 4) * 10 + Int(v & 0x0F) }

    /// Reads the clock the way Linux's mc146818_get_time does: wait for UIP clear, read, re-check.
    func readTime(_ rtc: CMOS, decode: (UInt8) -> Int) -> Int64 {
        while true {
            while readRegister(rtc, 0x0A) & 0x80 != 0 {}
            let fields = [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].map { readRegister(rtc, UInt8($0)) }
            guard readRegister(rtc, 0x0A) & 0x80 == 0, readRegister(rtc, 0x00) == fields[0] else { continue }
            var c = DateComponents()
            c.second = decode(fields[0]); c.minute = decode(fields[1]); c.hour = decode(fields[2])
            c.day = decode(fields[3]); c.month = decode(fields[4])
            c.year = decode(fields[6]) * 100 + decode(fields[5])
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            return Int64(calendar.date(from: c)!.timeIntervalSince1970)
        }
    }

    func testHostTimeInBCD() {
        let rtc = CMOS(memoryBelow4G: 512 << 20, memoryAbove4G: 0)
        XCTAssertEqual(readRegister(rtc, 0x0B), 0x02, "24-hour BCD by default")
        let guest = readTime(rtc, decode: bcd)
        XCTAssertLessThanOrEqual(abs(guest - Int64(Date().timeIntervalSince1970)), 2)
    }

    func testHostTimeInBinary() {
        let rtc = CMOS(memoryBelow4G: 512 << 20, memoryAbove4G: 0)
        writeRegister(rtc, 0x0B, 0x06)
        let guest = readTime(rtc, decode: { Int($0) })
        XCTAssertLessThanOrEqual(abs(guest - Int64(Date().timeIntervalSince1970)), 2)
    }

    func testFixedTimeEncodings() {
        let clock = FakeClock()
        // 2024-02-29 13:05:09 UTC, a Thursday.
        clock.set(epoch: 1_709_211_909)
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0, clock: clock.hostClock)
        let fields: [UInt8] = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32]
        XCTAssertEqual(fields.map { readRegister(rtc, $0) }, [0x09, 0x05, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20])
        writeRegister(rtc, 0x0B, 0x06)   // binary, 24 h
        XCTAssertEqual(fields.map { readRegister(rtc, $0) }, [9, 5, 13, 5, 29, 2, 24, 20])
        writeRegister(rtc, 0x0B, 0x00)   // BCD, 12 h
        XCTAssertEqual(readRegister(rtc, 0x04), 0x81, "1 PM")
        writeRegister(rtc, 0x0B, 0x04)   // binary, 12 h
        XCTAssertEqual(readRegister(rtc, 0x04), 0x81)
        clock.set(epoch: 1_709_164_800)  // 2024-02-29 00:00:00: 12 AM
        writeRegister(rtc, 0x0B, 0x00)
        XCTAssertEqual(readRegister(rtc, 0x04), 0x12)
        clock.set(epoch: 1_709_164_800 + 12 * 3600)  // noon: 12 PM
        XCTAssertEqual(readRegister(rtc, 0x04), 0x92)
    }

    func testStatusRegisters() {
        let clock = FakeClock()
        clock.set(epoch: 1_700_000_000, nanoseconds: 100_000_000)
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0, clock: clock.hostClock)
        XCTAssertEqual(readRegister(rtc, 0x0A), 0x26)
        clock.set(epoch: 1_700_000_000, nanoseconds: 999_900_000)  // last 244 µs of the second
        XCTAssertEqual(readRegister(rtc, 0x0A), 0xA6, "update in progress")
        writeRegister(rtc, 0x0A, 0xA5)                             // UIP is read-only
        clock.set(epoch: 1_700_000_001, nanoseconds: 0)
        XCTAssertEqual(readRegister(rtc, 0x0A), 0x25)
        XCTAssertEqual(readRegister(rtc, 0x0C), 0x00)
        XCTAssertEqual(readRegister(rtc, 0x0D), 0x80, "valid RAM and time")
        writeRegister(rtc, 0x0D, 0x00)
        XCTAssertEqual(readRegister(rtc, 0x0D), 0x80)
    }

    func testIndexKeepsNMIBitAndRAMIsPlain() {
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0)
        outb(rtc, index, 0x80 | 0x40)
        XCTAssertEqual(inb(rtc, index), 0xC0)
        outb(rtc, dataPort, 0x5A)
        XCTAssertEqual(readRegister(rtc, 0x40), 0x5A, "NMI bit does not change the register")
        XCTAssertEqual(rtc.saveState().index, 0x40)
        XCTAssertEqual(rtc.saveState().ram[0x40], 0x5A)
    }

    func testMemorySizeFields() {
        let rtc = CMOS(memoryBelow4G: 3 << 30, memoryAbove4G: 1 << 30)
        func word(_ r: UInt8) -> Int { Int(readRegister(rtc, r)) | Int(readRegister(rtc, r + 1)) << 8 }
        XCTAssertEqual(word(0x15), 640)
        XCTAssertEqual(word(0x17), 0xFFFF)
        XCTAssertEqual(word(0x30), 0xFFFF)
        XCTAssertEqual(word(0x34), ((3 << 30) - (16 << 20)) >> 16)
        XCTAssertEqual(word(0x5B) | Int(readRegister(rtc, 0x5D)) << 16, (1 << 30) >> 16)

        let small = CMOS(memoryBelow4G: 8 << 20, memoryAbove4G: 0)
        XCTAssertEqual(readRegister(small, 0x34), 0)
        XCTAssertEqual(Int(readRegister(small, 0x17)) | Int(readRegister(small, 0x18)) << 8, 7 * 1024)

        let huge = CMOS(memoryBelow4G: 8 << 30, memoryAbove4G: 1 << 50)
        XCTAssertEqual([0x34, 0x35].map { readRegister(huge, $0) }, [0xFF, 0xFF], "capped")
        XCTAssertEqual([0x5B, 0x5C, 0x5D].map { readRegister(huge, $0) }, [0xFF, 0xFF, 0xFF], "capped")
    }

    func testGuestSetsClockWithSETBit() {
        let clock = FakeClock()
        clock.set(epoch: 1_700_000_000)
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0, clock: clock.hostClock)
        // What Linux's mc146818_set_time does: SET, write the fields, clear SET.
        writeRegister(rtc, 0x0B, 0x82)
        for (r, v): (UInt8, UInt8) in [(0x09, 0x30), (0x08, 0x12), (0x07, 0x31), (0x04, 0x23), (0x02, 0x59), (0x00, 0x58), (0x32, 0x20)] {
            writeRegister(rtc, r, v)
        }
        clock.advance(nanoseconds: 5_000_000_000)   // the clock is held while SET is on
        XCTAssertEqual(readRegister(rtc, 0x00), 0x58)
        writeRegister(rtc, 0x0B, 0x02)
        clock.advance(nanoseconds: 3_000_000_000)
        // 2030-12-31 23:59:58 + 3 s = 2031-01-01 00:00:01
        let fields: [UInt8] = [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32]
        XCTAssertEqual(fields.map { readRegister(rtc, $0) }, [0x01, 0x00, 0x00, 0x01, 0x01, 0x31, 0x20])
        XCTAssertEqual(rtc.saveState().clockOffset, 1_924_991_998 - 1_700_000_005)
    }

    func testSingleFieldWrite() {
        let clock = FakeClock()
        clock.set(epoch: 1_709_211_909)   // 13:05:09
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0, clock: clock.hostClock)
        writeRegister(rtc, 0x02, 0x45)
        XCTAssertEqual(readRegister(rtc, 0x02), 0x45)
        XCTAssertEqual(readRegister(rtc, 0x04), 0x13)
        XCTAssertEqual(rtc.saveState().clockOffset, 40 * 60)
    }

    func testOddGuestValuesDoNotTrap() throws {
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0)
        writeRegister(rtc, 0x0B, 0x86)
        for r: UInt8 in [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32] { writeRegister(rtc, r, 0xFF) }
        writeRegister(rtc, 0x0B, 0x06)
        for r: UInt8 in [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32] { _ = readRegister(rtc, r) }
        var state = rtc.saveState()
        state.clockOffset = Int64.min / 2
        try rtc.restoreState(state)
        writeRegister(rtc, 0x0B, 0x02)
        for r: UInt8 in [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32] { _ = readRegister(rtc, r) }
    }

    func testCloudHypervisorResetQuirk() {
        let control = RecordingControl()
        let rtc = CMOS(memoryBelow4G: 0, memoryAbove4G: 0, control: control)
        writeRegister(rtc, 0x0F, 0x00)    // Linux's SMP warm-reset vector cleanup: no reset
        writeRegister(rtc, 0x8F, 0x0A)
        XCTAssertEqual(control.resets, 0)
        writeRegister(rtc, 0x8F, 0x00)    // reboot=bios
        XCTAssertEqual(control.resets, 1)
    }

    func testSaveRestoreRoundTrip() throws {
        let clock = FakeClock()
        clock.set(epoch: 1_700_000_000)
        let rtc = CMOS(memoryBelow4G: 1 << 30, memoryAbove4G: 0, clock: clock.hostClock)
        writeRegister(rtc, 0x02, 0x10)
        writeRegister(rtc, 0x50, 0xAB)
        outb(rtc, index, 0x8B)
        let saved = try roundTrip(rtc.saveState())
        XCTAssertEqual(saved, rtc.saveState())

        let copy = CMOS(memoryBelow4G: 0, memoryAbove4G: 0, clock: clock.hostClock)
        try copy.restoreState(saved)
        XCTAssertEqual(copy.saveState(), saved)
        for r in UInt8(0)..<128 {
            XCTAssertEqual(readRegister(copy, r), readRegister(rtc, r), "register \(r)")
        }
        var bad = saved
        bad.ram.removeLast()
        XCTAssertThrowsError(try copy.restoreState(bad))
    }

    func testCivilTimeMatchesFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var seconds: Int64 = -2_208_988_800   // 1900-01-01
        while seconds < 7_258_118_400 {       // 2200-01-01
            let t = CivilTime(epochSeconds: seconds)
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday],
                                            from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            XCTAssertEqual([t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday + 1],
                           [c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!, c.weekday!])
            XCTAssertEqual(t.epochSeconds, seconds)
            seconds += 86_400 * 13 + 3_607
        }
    }
}
