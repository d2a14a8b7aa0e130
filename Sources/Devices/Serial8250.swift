import Synchronization

/// Traffic through a UART, for `vm.counters`.
public struct SerialCounters: Sendable, Equatable {
    /// Bytes accepted from the host into the receive FIFO.
    public var inputBytes: UInt64 = 0
    /// Bytes the guest transmitted to the sink (loopback traffic excluded).
    public var outputBytes: UInt64 = 0
    /// Received bytes lost to a full FIFO (only loopback can overrun: host input waits instead).
    public var overruns: UInt64 = 0

    public init() {}

    public var dictionary: [String: UInt64] {
        ["in_bytes": inputBytes, "out_bytes": outputBytes, "overruns": overruns]
    }
}

/// A 16550A UART (what Linux's 8250 driver probes as "16550A"), as Cloud Hypervisor puts at COM1.
///
/// Transmission is instantaneous (no baud-rate timing): a THR write goes straight to the sink and
/// THR is empty again when the write returns. Host input waits in the caller until the guest has
/// made room, so nothing typed is lost; only loopback can overrun. Interrupts are edges on an ISA
/// line: `pulse()` whenever an enabled condition becomes pending, which is what the in-kernel IOAPIC
/// needs to see; the guest's handler then drains IIR until "no interrupt".
public final class Serial8250: BusDevice, Snapshottable {
    public static let stateVersion = 1
    public static let com1Base: UInt64 = 0x3F8
    public static let com1IRQ: UInt32 = 4
    public static let portCount: UInt64 = 8
    /// Receive FIFO depth when FIFOs are enabled (with FIFOs off the 16450 holding register is 1 byte).
    public static let fifoCapacity = 64

    private let interrupt: any InterruptLine
    private let sink: any SerialSink
    private let inner = Mutex(Inner())

    public init(interrupt: any InterruptLine, sink: any SerialSink = NullSink()) {
        self.interrupt = interrupt
        self.sink = sink
    }

    // MARK: Host side

    /// Queues bytes typed on the host; returns how many fit. The caller keeps the rest and retries
    /// after the space handler fires (or when `inputSpace` > 0). Bytes are refused in loopback mode,
    /// where the receiver is disconnected from the line.
    @discardableResult
    public func enqueueInput<C: Collection>(_ bytes: C) -> Int where C.Element == UInt8 {
        guard !bytes.isEmpty else { return 0 }
        let (taken, effects) = inner.withLock { s -> (Int, Effects) in
            let before = s.regs.pendingInterrupts
            let taken = min(s.regs.inputSpace, bytes.count)
            s.regs.receiveFifo.append(contentsOf: bytes.prefix(taken))
            s.counters.inputBytes += UInt64(taken)
            if taken < bytes.count { s.producerWaiting = true }
            var fx = Effects()
            fx.pulse = s.regs.pendingInterrupts & ~before != 0
            return (taken, fx)
        }
        perform(effects)
        return taken
    }

    /// How many bytes `enqueueInput` would accept now.
    public var inputSpace: Int { inner.withLock { $0.regs.inputSpace } }

    /// Called (on a vCPU thread, outside the device lock) when room appears after `enqueueInput`
    /// took less than it was given. Keep it short and level-like: post a semaphore or write an
    /// eventfd, since it may fire before the input thread starts waiting.
    public func setInputSpaceHandler(_ handler: (@Sendable () -> Void)?) {
        inner.withLock { $0.spaceHandler = handler }
    }

    public var counters: SerialCounters { inner.withLock { $0.counters } }

    /// Back to power-on state (VM reset). Counters and the space handler are kept.
    public func reset() {
        let effects = inner.withLock { s -> Effects in
            s.regs = Serial8250State()
            var fx = Effects()
            s.checkSpace(&fx)
            return fx
        }
        perform(effects)
    }

    // MARK: Guest side

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for i in data.indices {
            let (value, effects) = inner.withLock { $0.readRegister(offset + UInt64(i)) }
            data[i] = value
            perform(effects)
        }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        for i in data.indices {
            let effects = inner.withLock { $0.writeRegister(offset + UInt64(i), data[i]) }
            perform(effects)
        }
    }

    // MARK: Snapshot

    public func saveState() -> Serial8250State { inner.withLock { $0.regs } }

    public func restoreState(_ state: Serial8250State) throws(DeviceStateError) {
        guard state.receiveFifo.count <= state.receiveCapacity else {
            throw .invalid(device: "serial", reason: "\(state.receiveFifo.count) bytes in a \(state.receiveCapacity)-byte receive FIFO")
        }
        let effects = inner.withLock { s -> Effects in
            s.regs = state
            var fx = Effects()
            fx.pulse = s.regs.pendingInterrupts != 0
            s.checkSpace(&fx)
            return fx
        }
        perform(effects)
    }

    // MARK: Effects, performed outside the lock

    /// What an access asks of the outside world; done after unlocking so that a slow sink or the
    /// interrupt ioctl never holds up the input thread or another vCPU on the lock.
    fileprivate struct Effects: Sendable {
        var output: UInt8?
        var pulse = false
        var spaceHandler: (@Sendable () -> Void)?
    }

    private func perform(_ fx: Effects) {
        if var byte = fx.output {
            withUnsafeBytes(of: &byte) { sink.write($0) }
        }
        if fx.pulse { interrupt.pulse() }
        fx.spaceHandler?()
    }

    fileprivate struct Inner: Sendable {
        var regs = Serial8250State()
        var counters = SerialCounters()
        /// The host tried to queue more than fit; tell it when there is room.
        var producerWaiting = false
        var spaceHandler: (@Sendable () -> Void)?
    }
}

extension Serial8250.Inner {
    mutating func readRegister(_ offset: UInt64) -> (UInt8, Serial8250.Effects) {
        var fx = Serial8250.Effects()
        let value: UInt8
        switch offset {
        case UART.data where regs.divisorLatch:
            value = regs.divisorLow
        case UART.data:
            value = regs.receiveFifo.isEmpty ? 0 : regs.receiveFifo.removeFirst()
            checkSpace(&fx)
        case UART.interruptEnable where regs.divisorLatch:
            value = regs.divisorHigh
        case UART.interruptEnable:
            value = regs.interruptEnable
        case UART.interruptId:
            value = regs.interruptIdentification
            // Reading IIR acknowledges a THRE interrupt, but only when it is the one reported.
            if value & 0x0F == UART.iirTransmitEmpty { regs.transmitEmptyInterrupt = false }
        case UART.lineControl:
            value = regs.lineControl
        case UART.modemControl:
            value = regs.modemControl
        case UART.lineStatus:
            value = regs.lineStatusRegister
            regs.overrun = false
        case UART.modemStatus:
            value = regs.modemLines | regs.modemStatusDeltas
            regs.modemStatusDeltas = 0
        case UART.scratch:
            value = regs.scratch
        default:
            value = 0xFF
        }
        return (value, fx)
    }

    mutating func writeRegister(_ offset: UInt64, _ value: UInt8) -> Serial8250.Effects {
        var fx = Serial8250.Effects()
        var before = regs.pendingInterrupts
        switch offset {
        case UART.data where regs.divisorLatch:
            regs.divisorLow = value
        case UART.data:
            // Writing THR drops the THRE interrupt; the byte leaves at once and THRE comes back,
            // which is a new edge even if the guest never acknowledged the previous one.
            regs.transmitEmptyInterrupt = false
            before = regs.pendingInterrupts
            if regs.loopback {
                receiveLooped(value)
            } else {
                fx.output = value
                counters.outputBytes += 1
            }
            regs.transmitEmptyInterrupt = true
        case UART.interruptEnable where regs.divisorLatch:
            regs.divisorHigh = value
        case UART.interruptEnable:
            let newlyEnabled = value & ~regs.interruptEnable
            regs.interruptEnable = value & 0x0F
            // Enabling ETBEI while THR is empty raises THRE again, even if it was acknowledged
            // (Linux's THRE tests and Windows rely on this).
            if newlyEnabled & UART.ierTransmitEmpty != 0 { regs.transmitEmptyInterrupt = true }
        case UART.interruptId:
            writeFifoControl(value)
        case UART.lineControl:
            regs.lineControl = value
        case UART.modemControl:
            writeModemControl(value)
        case UART.scratch:
            regs.scratch = value
        default:
            break  // LSR and MSR are read-only (their writes are factory test modes).
        }
        fx.pulse = regs.pendingInterrupts & ~before != 0
        checkSpace(&fx)
        return fx
    }

    private mutating func writeFifoControl(_ value: UInt8) {
        let enable = value & UART.fcrEnable
        if enable != regs.fifoControl & UART.fcrEnable {
            regs.receiveFifo.removeAll()  // switching FIFO mode resets both FIFOs
        }
        guard enable != 0 else {
            regs.fifoControl = 0  // the other bits are only writable with the FIFO enabled
            return
        }
        if value & UART.fcrClearReceive != 0 { regs.receiveFifo.removeAll() }
        // Clearing the transmit FIFO has nothing to do: it is always empty.
        regs.fifoControl = value & (UART.fcrEnable | UART.fcrTriggerMask)
    }

    private mutating func writeModemControl(_ value: UInt8) {
        let oldLines = regs.modemLines
        regs.modemControl = value & UART.mcrMask
        let newLines = regs.modemLines
        let changed = oldLines ^ newLines
        if changed & UART.msrCTS != 0 { regs.modemStatusDeltas |= UART.msrDeltaCTS }
        if changed & UART.msrDSR != 0 { regs.modemStatusDeltas |= UART.msrDeltaDSR }
        if changed & UART.msrDCD != 0 { regs.modemStatusDeltas |= UART.msrDeltaDCD }
        if oldLines & UART.msrRI != 0, newLines & UART.msrRI == 0 { regs.modemStatusDeltas |= UART.msrTrailingRI }
    }

    /// A transmitted byte looped back to the receiver. A full FIFO loses the new byte (in 16450
    /// mode the new byte overwrites the holding register) and sets OE.
    private mutating func receiveLooped(_ value: UInt8) {
        if regs.receiveFifo.count < regs.receiveCapacity {
            regs.receiveFifo.append(value)
            return
        }
        regs.overrun = true
        counters.overruns += 1
        if !regs.fifoEnabled { regs.receiveFifo[regs.receiveFifo.count - 1] = value }
    }

    mutating func checkSpace(_ fx: inout Serial8250.Effects) {
        guard producerWaiting, regs.inputSpace > 0 else { return }
        producerWaiting = false
        fx.spaceHandler = spaceHandler
    }
}

extension Serial8250State {
    var fifoEnabled: Bool { fifoControl & UART.fcrEnable != 0 }
    var loopback: Bool { modemControl & UART.mcrLoopback != 0 }
    var divisorLatch: Bool { lineControl & UART.lcrDivisorLatch != 0 }
    var receiveCapacity: Int { fifoEnabled ? Serial8250.fifoCapacity : 1 }
    var inputSpace: Int { loopback ? 0 : max(0, receiveCapacity - receiveFifo.count) }

    /// Interrupt conditions that are both pending and enabled, as IER bits.
    var pendingInterrupts: UInt8 {
        var pending: UInt8 = 0
        if overrun { pending |= UART.ierLineStatus }
        if !receiveFifo.isEmpty { pending |= UART.ierReceivedData }
        if transmitEmptyInterrupt { pending |= UART.ierTransmitEmpty }
        if modemStatusDeltas != 0 { pending |= UART.ierModemStatus }
        return pending & interruptEnable
    }

    /// IIR: the highest-priority pending source (line status > received data > THR empty > modem
    /// status). Data below the FIFO trigger level is reported as "received data" at once rather than
    /// as a character timeout later, since nothing here measures character times.
    var interruptIdentification: UInt8 {
        let pending = pendingInterrupts
        let id: UInt8
        if pending & UART.ierLineStatus != 0 {
            id = UART.iirLineStatus
        } else if pending & UART.ierReceivedData != 0 {
            id = UART.iirReceivedData
        } else if pending & UART.ierTransmitEmpty != 0 {
            id = UART.iirTransmitEmpty
        } else if pending & UART.ierModemStatus != 0 {
            id = UART.iirModemStatus
        } else {
            id = UART.iirNoInterrupt
        }
        return id | (fifoEnabled ? UART.iirFifoEnabled : 0)
    }

    var lineStatusRegister: UInt8 {
        var value = UART.lsrTransmitEmpty | UART.lsrTransmitterIdle
        if !receiveFifo.isEmpty { value |= UART.lsrDataReady }
        if overrun { value |= UART.lsrOverrun }
        return value
    }

    /// MSR bits 4-7. Nothing drives real modem lines, so outside loopback the port looks like a
    /// null-modem cable to a ready peer (CTS, DSR, DCD); in loopback MCR's outputs are wired back.
    var modemLines: UInt8 {
        guard loopback else { return UART.msrCTS | UART.msrDSR | UART.msrDCD }
        var lines: UInt8 = 0
        if modemControl & UART.mcrRTS != 0 { lines |= UART.msrCTS }
        if modemControl & UART.mcrDTR != 0 { lines |= UART.msrDSR }
        if modemControl & UART.mcrOut1 != 0 { lines |= UART.msrRI }
        if modemControl & UART.mcrOut2 != 0 { lines |= UART.msrDCD }
        return lines
    }
}
