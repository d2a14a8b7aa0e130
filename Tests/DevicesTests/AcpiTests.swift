import Devices
import Foundation
import XCTest

final class AcpiPMTests: XCTestCase {
    func testResetAndS5() {
        let control = RecordingControl()
        let pm = AcpiPM(control: control)
        outb(pm, 0, 0x01)
        XCTAssertEqual(control.resets, 1)
        outb(pm, 0, 0x34)                 // SLP_TYP 5 | SLP_EN
        XCTAssertEqual(control.shutdowns, 1)
        outb(pm, 0, 0x14)                 // S5 without SLP_EN
        outb(pm, 0, (3 << 2) | 0x20)      // S3: not supported, ignored
        outb(pm, 0, 0x00)
        outb(pm, 1, 0x01)                 // the second byte is not the register
        XCTAssertEqual(control.resets, 1)
        XCTAssertEqual(control.shutdowns, 1)
        outw(pm, 0, 0x0034)               // a 16-bit write still carries the byte
        XCTAssertEqual(control.shutdowns, 2)
        XCTAssertEqual(inb(pm, 0), 0)
        XCTAssertEqual(inb(pm, 1), 0)
    }
}

final class AcpiPMTimerTests: XCTestCase {
    func testCountsAtTheACPIFrequency() {
        let clock = FakeClock()
        let timer = AcpiPMTimer(clock: clock.hostClock)
        XCTAssertEqual(inl(timer, 0), 0)
        clock.advance(nanoseconds: 1_000_000_000)
        XCTAssertEqual(inl(timer, 0), 3_579_545)
        clock.advance(nanoseconds: 1_000)
        XCTAssertEqual(inl(timer, 0), 3_579_548)   // 3.58 ticks per µs, rounded down
        // 32 bits wrap after 2^32 / f ≈ 1199.9 s.
        clock.advance(nanoseconds: 1_200_000_000_000)
        XCTAssertEqual(UInt64(inl(timer, 0)), (3_579_548 + 1_200 * 3_579_545) & 0xFFFF_FFFF)
    }

    func testNarrowReads() {
        let clock = FakeClock()
        let timer = AcpiPMTimer(clock: clock.hostClock)
        clock.advance(nanoseconds: 1_000_000_000)    // 0x0036_9E99
        var word: UInt16 = 0
        withUnsafeMutableBytes(of: &word) { timer.read(offset: 0, data: $0) }
        XCTAssertEqual(word, 0x9E99)
        XCTAssertEqual(inb(timer, 2), 0x36)
    }

    func testRealClockIsMonotonicAndRoughlyRight() {
        let timer = AcpiPMTimer()
        var last = inl(timer, 0)
        for _ in 0..<10_000 {
            let now = inl(timer, 0)
            XCTAssertLessThan(now &- last, 0x8000_0000, "never backwards")
            last = now
        }
        // Loose bounds: a preempted test thread (2 busy cores) skews a short interval.
        let start = inl(timer, 0), t0 = DispatchTime.now().uptimeNanoseconds
        usleep(300_000)
        let ticks = inl(timer, 0) &- start, elapsed = DispatchTime.now().uptimeNanoseconds - t0
        let hz = Double(ticks) / (Double(elapsed) / 1e9)
        XCTAssertEqual(hz, 3_579_545, accuracy: 3_579_545 * 0.1)
    }

    func testRestoreContinuesFromSavedCount() throws {
        let source = FakeClock()
        let timer = AcpiPMTimer(clock: source.hostClock)
        source.advance(nanoseconds: 10_000_000_000)
        let saved = try roundTrip(timer.saveState())
        XCTAssertEqual(saved.ticks, 35_795_450)

        // A new host whose monotonic clock is at a different point entirely.
        let target = FakeClock()
        target.advance(nanoseconds: 123_000_000_000)
        let restored = AcpiPMTimer(clock: target.hostClock)
        try restored.restoreState(saved)
        XCTAssertEqual(inl(restored, 0), 35_795_450)
        target.advance(nanoseconds: 1_000_000_000)
        XCTAssertEqual(inl(restored, 0), 35_795_450 + 3_579_545)
        XCTAssertEqual(restored.saveState().ticks, 35_795_450 + 3_579_545)
    }
}

final class DebugPortTests: XCTestCase {
    func testCountsCodes() throws {
        let seen = RecordingCodes()
        let port = DebugPort(onCode: { seen.add($0) })
        outb(port, 0, 0x41)
        outb(port, 0, 0x00)
        XCTAssertEqual(port.writeCount, 2)
        XCTAssertEqual(port.lastCode, 0x00)
        XCTAssertEqual(seen.codes, [0x41, 0x00])
        XCTAssertEqual(inb(port, 0), 0xFF)
        XCTAssertEqual(DebugPort.CodeRange(code: 0x41), .kernel)
        XCTAssertEqual(DebugPort.CodeRange(code: 0x90), .custom)
        let copy = DebugPort()
        try copy.restoreState(try roundTrip(port.saveState()))
        XCTAssertEqual(copy.lastCode, 0x00)
    }
}

private final class RecordingCodes: Sendable {
    private let lock = NSLock()
    nonisolated(unsafe) private var list: [UInt8] = []
    func add(_ code: UInt8) { lock.lock(); list.append(code); lock.unlock() }
    var codes: [UInt8] { lock.lock(); defer { lock.unlock() }; return list }
}

/// The devices at their platform addresses on one port-I/O bus, reached as the vCPU loop would.
final class PlatformBusTests: XCTestCase {
    func testStandardLayout() throws {
        let control = RecordingControl()
        let sink = MemorySink()
        let bus = Bus()
        try bus.register(Serial8250(interrupt: RecordingLine(), sink: sink), base: Serial8250.com1Base, size: Serial8250.portCount)
        try bus.register(I8042(control: control), base: I8042.base, size: I8042.size)
        try bus.register(CMOS(memoryBelow4G: 1 << 30, memoryAbove4G: 0), base: CMOS.base, size: CMOS.size)
        try bus.register(AcpiPM(control: control), base: AcpiPM.base, size: AcpiPM.size)
        try bus.register(AcpiPMTimer(), base: AcpiPMTimer.base, size: AcpiPMTimer.size)
        try bus.register(DebugPort(), base: DebugPort.base, size: DebugPort.size)

        func out(_ port: UInt64, _ value: UInt8) { withUnsafeBytes(of: value) { _ = bus.write(port, data: $0) } }
        func inp(_ port: UInt64) -> UInt8 {
            var v: UInt8 = 0
            withUnsafeMutableBytes(of: &v) { _ = bus.read(port, data: $0) }
            return v
        }
        out(0x3F8, UInt8(ascii: "A"))
        XCTAssertEqual(sink.text, "A")
        XCTAssertEqual(inp(0x3FD), 0x60)
        out(0x70, 0x0D)
        XCTAssertEqual(inp(0x71), 0x80)
        out(0x80, 0x12)
        out(0x64, 0xFE)
        out(0x600, 0x34)
        XCTAssertEqual(control.resets, 1)
        XCTAssertEqual(control.shutdowns, 1)
        XCTAssertEqual(inp(0x2F8), 0xFF, "no COM2")
    }
}
