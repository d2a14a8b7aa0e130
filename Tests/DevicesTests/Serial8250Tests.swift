@testable import Devices
import Dispatch
import Synchronization
import XCTest

final class Serial8250Tests: XCTestCase {
    // Register offsets, as a driver names them.
    let THR: UInt64 = 0, RBR: UInt64 = 0, DLL: UInt64 = 0, DLM: UInt64 = 1, IER: UInt64 = 1
    let IIR: UInt64 = 2, FCR: UInt64 = 2, LCR: UInt64 = 3, MCR: UInt64 = 4, LSR: UInt64 = 5
    let MSR: UInt64 = 6, SCR: UInt64 = 7

    var line: RecordingLine!
    var sink: MemorySink!
    var uart: Serial8250!

    override func setUp() {
        line = RecordingLine()
        sink = MemorySink()
        uart = Serial8250(interrupt: line, sink: sink)
    }

    /// What Linux's 8250 driver does in probe and startup for a 16550A at 115200 8N1.
    func linuxInit(ier: UInt8 = 0x05) {
        outb(uart, LCR, 0x80)        // DLAB
        outb(uart, DLL, 0x01)
        outb(uart, DLM, 0x00)
        outb(uart, LCR, 0x03)        // 8N1
        outb(uart, FCR, 0x07)        // enable, clear RX and TX
        outb(uart, FCR, 0x81)        // enable, RX trigger 8
        outb(uart, MCR, 0x0B)        // DTR, RTS, OUT2
        _ = inb(uart, LSR); _ = inb(uart, RBR); _ = inb(uart, IIR); _ = inb(uart, MSR)
        outb(uart, IER, ier)
    }

    func testPowerOnRegisters() {
        XCTAssertEqual(inb(uart, IER), 0)
        XCTAssertEqual(inb(uart, IIR), 0x01)
        XCTAssertEqual(inb(uart, LCR), 0)
        XCTAssertEqual(inb(uart, MCR), 0)
        XCTAssertEqual(inb(uart, LSR), 0x60)
        XCTAssertEqual(inb(uart, MSR), 0xB0)
        XCTAssertEqual(line.pulses, 0)
    }

    func testLinuxProbeChecks() {
        // Scratch register test.
        outb(uart, SCR, 0xA5); XCTAssertEqual(inb(uart, SCR), 0xA5)
        outb(uart, SCR, 0x5A); XCTAssertEqual(inb(uart, SCR), 0x5A)
        // IER holds only its low nibble (rules out XScale UARTs).
        outb(uart, IER, 0xFF); XCTAssertEqual(inb(uart, IER), 0x0F)
        outb(uart, IER, 0x00); XCTAssertEqual(inb(uart, IER), 0x00)
        // Loopback test: MCR = LOOP|OUT2|RTS must show DCD|CTS.
        outb(uart, MCR, 0x1A)
        XCTAssertEqual(inb(uart, MSR) & 0xF0, 0x90)
        outb(uart, MCR, 0x00)
        // FIFO detection: FIFOs on → IIR bits 6-7 set, bit 5 clear (16550A, not 16750).
        outb(uart, FCR, 0x01)
        XCTAssertEqual(inb(uart, IIR) & 0xE0, 0xC0)
        outb(uart, FCR, 0x21)
        XCTAssertEqual(inb(uart, IIR) & 0xE0, 0xC0)
        // EFR probe under LCR=0xBF reads IIR, which is not 0 (no 16650 EFR).
        outb(uart, LCR, 0xBF)
        XCTAssertNotEqual(inb(uart, IIR), 0)
        outb(uart, LCR, 0)
    }

    func testDivisorLatchAndWideAccess() {
        outb(uart, LCR, 0x83)
        outw(uart, DLL, 0x0102)     // one 16-bit access covers DLL and DLM
        XCTAssertEqual(inb(uart, DLL), 0x02)
        XCTAssertEqual(inb(uart, DLM), 0x01)
        outb(uart, LCR, 0x03)
        XCTAssertEqual(inb(uart, IER), 0, "DLM must not alias IER")
        XCTAssertEqual(sink.bytes, [], "DLL writes must not transmit")
        let state = uart.saveState()
        XCTAssertEqual(state.divisorLow, 0x02)
        XCTAssertEqual(state.divisorHigh, 0x01)
    }

    func testLinuxInitLeavesQuietUART() {
        linuxInit()
        XCTAssertEqual(inb(uart, IIR), 0xC1)
        XCTAssertEqual(inb(uart, LSR), 0x60)
        XCTAssertEqual(inb(uart, MSR), 0xB0)
        XCTAssertEqual(line.pulses, 0)
    }

    func testPolledTransmit() {
        linuxInit(ier: 0)
        for byte in "hello\n".utf8 {
            XCTAssertNotEqual(inb(uart, LSR) & 0x20, 0)
            outb(uart, THR, byte)
        }
        XCTAssertEqual(sink.text, "hello\n")
        XCTAssertEqual(line.pulses, 0)
        XCTAssertEqual(uart.counters.outputBytes, 6)
    }

    func testTHREInterruptOnEnableAndAfterEachWrite() {
        linuxInit()
        _ = line.takePulses()
        outb(uart, IER, 0x07)                 // enable THRI: THR is empty → interrupt now
        XCTAssertEqual(line.takePulses(), 1)
        XCTAssertEqual(inb(uart, IIR), 0xC2)
        XCTAssertEqual(inb(uart, IIR), 0xC1, "reading IIR acknowledges THRE")
        // The interrupt handler refills THR; the byte leaves at once, THRE comes back.
        outb(uart, THR, UInt8(ascii: "a"))
        XCTAssertEqual(line.takePulses(), 1)
        XCTAssertEqual(inb(uart, IIR), 0xC2)
        outb(uart, THR, UInt8(ascii: "b"))
        XCTAssertEqual(line.takePulses(), 1, "every THR write is a new edge")
        XCTAssertEqual(sink.text, "ab")
        // Linux's UART_BUG_THRE test: re-enabling THRI re-raises THRE even after it was acknowledged.
        _ = inb(uart, IIR)
        outb(uart, IER, 0)
        outb(uart, IER, 0x02)
        XCTAssertEqual(inb(uart, IIR), 0xC2)
        XCTAssertEqual(line.takePulses(), 1)
        // Writing IER again with THRI already on does not.
        outb(uart, IER, 0x02)
        XCTAssertEqual(inb(uart, IIR), 0xC1)
        XCTAssertEqual(line.takePulses(), 0)
    }

    func testReceiveWithInterrupt() {
        linuxInit()
        _ = line.takePulses()
        XCTAssertEqual(uart.enqueueInput(Array("abc".utf8)), 3)
        XCTAssertEqual(line.takePulses(), 1)
        XCTAssertEqual(uart.enqueueInput(Array("d".utf8)), 1)
        XCTAssertEqual(line.takePulses(), 0, "RDA was already pending")
        XCTAssertEqual(inb(uart, IIR), 0xC4)
        var got: [UInt8] = []
        while inb(uart, LSR) & 0x01 != 0 { got.append(inb(uart, RBR)) }
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "abcd")
        XCTAssertEqual(inb(uart, IIR), 0xC1, "RDA clears when the FIFO is empty")
        XCTAssertEqual(inb(uart, LSR), 0x60)
        uart.enqueueInput([0x0D])
        XCTAssertEqual(line.takePulses(), 1, "new data after draining is a new edge")
        XCTAssertEqual(uart.counters.inputBytes, 5)
    }

    func testNoInterruptWhenDisabled() {
        linuxInit(ier: 0)
        uart.enqueueInput([1, 2, 3])
        XCTAssertEqual(line.pulses, 0)
        XCTAssertEqual(inb(uart, IIR), 0xC1)
        XCTAssertEqual(inb(uart, LSR) & 0x01, 0x01)
        // Enabling RDA while data waits raises it.
        outb(uart, IER, 0x01)
        XCTAssertEqual(line.pulses, 1)
        XCTAssertEqual(inb(uart, IIR), 0xC4)
    }

    func testFifoFullMakesCallerWaitAndSignalsRoom() {
        linuxInit()
        let room = Mutex(0)
        uart.setInputSpaceHandler { room.withLock { $0 += 1 } }
        let input = (0..<100).map { UInt8($0) }
        XCTAssertEqual(uart.enqueueInput(input), Serial8250.fifoCapacity)
        XCTAssertEqual(uart.inputSpace, 0)
        XCTAssertEqual(uart.enqueueInput(input[64...]), 0)
        XCTAssertEqual(inb(uart, LSR) & 0x02, 0, "host input never overruns")
        XCTAssertEqual(room.withLock { $0 }, 0)
        XCTAssertEqual(inb(uart, RBR), 0)
        XCTAssertEqual(room.withLock { $0 }, 1, "the first byte read makes room")
        _ = inb(uart, RBR)
        XCTAssertEqual(room.withLock { $0 }, 1, "signalled once per wait")
        XCTAssertEqual(uart.enqueueInput(input[64...]), 2)
        var got: [UInt8] = []
        while inb(uart, LSR) & 0x01 != 0 { got.append(inb(uart, RBR)) }
        XCTAssertEqual(got, Array(2..<66).map { UInt8($0) })
    }

    func testFifoDisabledHoldsOneByte() {
        outb(uart, FCR, 0x00)
        XCTAssertEqual(uart.enqueueInput([7, 8]), 1)
        XCTAssertEqual(inb(uart, IIR), 0x01, "no FIFO bits in IIR")
        XCTAssertEqual(inb(uart, RBR), 7)
        XCTAssertEqual(uart.enqueueInput([8]), 1)
    }

    func testFcrClearsReceiveFifo() {
        linuxInit()
        uart.enqueueInput([1, 2, 3])
        outb(uart, FCR, 0x83)
        XCTAssertEqual(inb(uart, LSR) & 0x01, 0)
        XCTAssertEqual(inb(uart, IIR), 0xC1)
    }

    func testLoopbackAndOverrun() {
        linuxInit(ier: 0x05)            // RDA + line status
        _ = line.takePulses()
        outb(uart, MCR, 0x1F)           // loopback with every modem output on
        XCTAssertEqual(uart.enqueueInput([9]), 0, "the receiver is off the line in loopback")
        XCTAssertEqual(inb(uart, MSR) & 0xF0, 0xF0)
        for i in 0..<64 { outb(uart, THR, UInt8(i)) }
        XCTAssertEqual(sink.bytes, [], "looped bytes do not reach the sink")
        XCTAssertEqual(line.takePulses(), 1, "RDA rose once")
        XCTAssertEqual(inb(uart, LSR), 0x61)
        outb(uart, THR, 0xEE)           // 65th byte: FIFO full → lost, OE set
        XCTAssertEqual(line.takePulses(), 1, "line status interrupt")
        XCTAssertEqual(inb(uart, IIR), 0xC6, "line status outranks received data")
        XCTAssertEqual(inb(uart, LSR), 0x63)
        XCTAssertEqual(inb(uart, LSR), 0x61, "reading LSR clears OE")
        XCTAssertEqual(inb(uart, IIR), 0xC4)
        var got: [UInt8] = []
        while inb(uart, LSR) & 0x01 != 0 { got.append(inb(uart, RBR)) }
        XCTAssertEqual(got, (0..<64).map { UInt8($0) }, "the FIFO keeps what it had")
        XCTAssertEqual(uart.counters.overruns, 1)
        // Leaving loopback reconnects the receiver.
        outb(uart, MCR, 0x0B)
        XCTAssertEqual(uart.enqueueInput([9]), 1)
    }

    func testOverrunWithoutFifoOverwritesHoldingRegister() {
        outb(uart, MCR, 0x10)
        outb(uart, THR, 1)
        outb(uart, THR, 2)
        XCTAssertEqual(inb(uart, LSR) & 0x03, 0x03)
        XCTAssertEqual(inb(uart, RBR), 2)
    }

    func testModemStatusInterrupt() {
        linuxInit(ier: 0x08)            // modem status only
        _ = line.takePulses()
        outb(uart, MCR, 0x10)           // loopback, all outputs off: CTS, DSR, DCD drop
        XCTAssertEqual(line.takePulses(), 1)
        XCTAssertEqual(inb(uart, IIR), 0xC0)
        XCTAssertEqual(inb(uart, MSR), 0x0B, "lines low, DCTS|DDSR|DDCD")
        XCTAssertEqual(inb(uart, MSR), 0x00, "reading MSR clears the deltas")
        XCTAssertEqual(inb(uart, IIR), 0xC1)
        outb(uart, MCR, 0x14)           // RI on
        outb(uart, MCR, 0x10)           // RI off: trailing edge
        XCTAssertEqual(inb(uart, MSR), 0x04)
    }

    func testPriorityOrder() {
        linuxInit(ier: 0x0F)
        outb(uart, MCR, 0x10)            // loopback: modem deltas pending
        _ = inb(uart, IIR)               // may acknowledge THRE if it was the top
        outb(uart, THR, 1)               // RDA + THRE
        for _ in 0..<64 { outb(uart, THR, 1) } // overrun
        XCTAssertEqual(inb(uart, IIR), 0xC6)
        _ = inb(uart, LSR)
        XCTAssertEqual(inb(uart, IIR), 0xC4)
        while inb(uart, LSR) & 0x01 != 0 { _ = inb(uart, RBR) }
        XCTAssertEqual(inb(uart, IIR), 0xC2)
        XCTAssertEqual(inb(uart, IIR), 0xC0, "THRE acknowledged, modem status remains")
        _ = inb(uart, MSR)
        XCTAssertEqual(inb(uart, IIR), 0xC1)
    }

    func testSaveRestoreRoundTrip() throws {
        linuxInit()
        outb(uart, SCR, 0x42)
        uart.enqueueInput(Array("snapshot".utf8))
        _ = inb(uart, RBR)
        let saved = try roundTrip(uart.saveState())
        XCTAssertEqual(saved, uart.saveState())

        let line2 = RecordingLine()
        let copy = Serial8250(interrupt: line2, sink: MemorySink())
        try copy.restoreState(saved)
        XCTAssertEqual(copy.saveState(), saved)
        XCTAssertEqual(line2.pulses, 1, "restoring a pending RDA re-raises it")
        for offset: UInt64 in [IER, IIR, LCR, MCR, LSR, MSR, SCR] {
            XCTAssertEqual(inb(copy, offset), inb(uart, offset), "register \(offset)")
        }
        var a: [UInt8] = [], b: [UInt8] = []
        while inb(uart, LSR) & 1 != 0 { a.append(inb(uart, RBR)) }
        while inb(copy, LSR) & 1 != 0 { b.append(inb(copy, RBR)) }
        XCTAssertEqual(a, b)
        XCTAssertEqual(String(decoding: b, as: UTF8.self), "napshot")

        let quiet = RecordingLine()
        let idle = Serial8250(interrupt: quiet)
        try idle.restoreState(Serial8250State())
        XCTAssertEqual(quiet.pulses, 0, "nothing pending, nothing raised")
    }

    func testRestoreRejectsOversizedFifo() {
        var state = Serial8250State()
        state.receiveFifo = [1, 2]      // FIFO disabled: one byte at most
        XCTAssertThrowsError(try uart.restoreState(state))
        state.fifoControl = 0x01
        state.receiveFifo = Array(repeating: 0, count: 65)
        XCTAssertThrowsError(try uart.restoreState(state))
        XCTAssertEqual(uart.saveState(), Serial8250State(), "a rejected state changes nothing")
    }

    func testResetReturnsToPowerOn() {
        linuxInit()
        uart.enqueueInput([1])
        uart.reset()
        XCTAssertEqual(uart.saveState(), Serial8250State())
        XCTAssertEqual(inb(uart, LSR), 0x60)
    }

    /// An input thread pushing far more than the FIFO holds while a "guest" drains it: every byte
    /// arrives, in order, with the caller waiting on the space handler.
    func testConcurrentInputLosesNothing() {
        linuxInit(ier: 0)
        let room = DispatchSemaphore(value: 0)
        uart.setInputSpaceHandler { room.signal() }
        let total = 20_000
        let input = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let uart = self.uart!
        let producer = Thread {
            var next = 0
            while next < input.count {
                let taken = uart.enqueueInput(input[next..<min(next + 256, input.count)])
                next += taken
                if taken == 0 { _ = room.wait(timeout: .now() + .milliseconds(50)) }
            }
        }
        producer.start()
        var got: [UInt8] = []
        got.reserveCapacity(total)
        let deadline = Date().addingTimeInterval(20)
        while got.count < total && Date() < deadline {
            if inb(uart, LSR) & 1 != 0 { got.append(inb(uart, RBR)) }
        }
        XCTAssertEqual(got.count, total)
        XCTAssertEqual(got, input)
        XCTAssertEqual(uart.counters.inputBytes, UInt64(total))
    }
}
