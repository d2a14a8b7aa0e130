import Devices
import XCTest

final class I8042Tests: XCTestCase {
    let data: UInt64 = 0, command: UInt64 = 4

    var control: RecordingControl!
    var kbc: I8042!

    override func setUp() {
        control = RecordingControl()
        kbc = I8042(control: control)
    }

    /// Sends a controller command and collects its reply bytes, as Linux's i8042_command does.
    func command(_ value: UInt8, parameter: UInt8? = nil) -> [UInt8] {
        outb(kbc, command, value)
        if let parameter { outb(kbc, data, parameter) }
        var reply: [UInt8] = []
        while inb(kbc, command) & 0x01 != 0 { reply.append(inb(kbc, data)) }
        return reply
    }

    func testLinuxProbeSequence() {
        // i8042_flush: status must not read 0xFF, and nothing is waiting.
        let status = inb(kbc, command)
        XCTAssertNotEqual(status, 0xFF)
        XCTAssertEqual(status & 0x03, 0, "output empty, input buffer never busy")
        XCTAssertEqual(command(0xAA), [0x55], "self test")
        XCTAssertNotEqual(inb(kbc, command) & 0x04, 0, "system flag after self test")
        let ctr = command(0x20)
        XCTAssertEqual(ctr.count, 1)
        XCTAssertEqual(command(0x20), ctr, "stable CTR reads")
        XCTAssertEqual(command(0x60, parameter: 0x47), [])
        XCTAssertEqual(command(0x20), [0x47])
        XCTAssertEqual(command(0xAB), [0x00], "keyboard interface test")
        XCTAssertEqual(command(0xA9), [0x00], "aux interface test")
        // Port enables are reflected in the command byte.
        _ = command(0xA7)
        XCTAssertEqual(command(0x20)[0] & 0x20, 0x20)
        _ = command(0xA8)
        XCTAssertEqual(command(0x20)[0] & 0x20, 0x00)
        _ = command(0xAD)
        XCTAssertEqual(command(0x20)[0] & 0x10, 0x10)
        _ = command(0xAE)
        XCTAssertEqual(command(0x20)[0] & 0x10, 0x00)
        XCTAssertEqual(control.resets, 0)
    }

    func testAuxLoopReportsAuxData() {
        outb(kbc, command, 0xD3)
        outb(kbc, data, 0x5A)
        XCTAssertEqual(inb(kbc, command) & 0x21, 0x21, "output full, from aux")
        XCTAssertEqual(inb(kbc, data), 0x5A)
        XCTAssertEqual(inb(kbc, command) & 0x21, 0)
        XCTAssertEqual(command(0xD2, parameter: 0x1C), [0x1C], "keyboard echo")
    }

    func testDeviceBytesAreSwallowed() {
        XCTAssertEqual(command(0xD4, parameter: 0xFF), [], "nothing behind the aux port")
        outb(kbc, data, 0xFF)  // keyboard reset: no keyboard
        XCTAssertEqual(inb(kbc, command) & 0x01, 0)
        XCTAssertEqual(inb(kbc, command) & 0x08, 0, "last write was data")
        XCTAssertEqual(control.resets, 0)
    }

    func testResetCommand() {
        outb(kbc, command, 0xFE)
        XCTAssertEqual(control.resets, 1)
        outb(kbc, command, 0xFF)  // pulses no line
        XCTAssertEqual(control.resets, 1)
        XCTAssertEqual(control.shutdowns, 0)
    }

    func testOutputPortResetLine() {
        _ = command(0xD1, parameter: 0xDF)   // A20 on, reset line high: nothing happens
        XCTAssertEqual(control.resets, 0)
        XCTAssertEqual(command(0xD0), [0xDF])
        _ = command(0xD1, parameter: 0xDE)   // reset line low
        XCTAssertEqual(control.resets, 1)
    }

    func testPort61IsNotOurs() {
        XCTAssertEqual(inb(kbc, 1), 0xFF)
        outb(kbc, 1, 0xFE)
        XCTAssertEqual(control.resets, 0)
    }

    func testSaveRestoreRoundTrip() throws {
        _ = command(0x60, parameter: 0x61)
        outb(kbc, command, 0xAA)               // reply left unread
        outb(kbc, command, 0xD1)               // waiting for its parameter
        let saved = try roundTrip(kbc.saveState())
        XCTAssertEqual(saved, kbc.saveState())

        let control2 = RecordingControl()
        let copy = I8042(control: control2)
        try copy.restoreState(saved)
        XCTAssertEqual(copy.saveState(), saved)
        XCTAssertEqual(inb(copy, command), inb(kbc, command))
        XCTAssertEqual(inb(copy, data), 0x55)
        outb(copy, data, 0x00)                 // completes 0xD1 with the reset line low
        XCTAssertEqual(control2.resets, 1)
    }
}
