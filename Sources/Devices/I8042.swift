import Synchronization

/// Everything a guest can observe of the `I8042` controller, as plain data.
public struct I8042State: Codable, Sendable, Equatable {
    /// One byte waiting in the output buffer, and which port it claims to come from.
    public struct OutputByte: Codable, Sendable, Equatable {
        public var value: UInt8
        public var fromAux: Bool

        public init(value: UInt8, fromAux: Bool) {
            self.value = value
            self.fromAux = fromAux
        }
    }

    /// The controller command byte (CTR): interrupts on, system flag, aux disabled, translation
    /// on — what firmware leaves behind.
    public var commandByte: UInt8 = 0x65
    /// Output port: bit 0 is the (active-low) CPU reset line, bit 1 the A20 gate.
    public var outputPort: UInt8 = 0x03
    /// A controller command that is waiting for its parameter on port 0x60.
    public var pendingCommand: UInt8?
    /// Bytes for the guest to read from port 0x60, oldest first.
    public var output: [OutputByte] = []
    /// Status bit 3: the last write went to the command port.
    public var lastWriteWasCommand = false
    /// The last byte read from port 0x60 (re-read when the buffer is empty, as on hardware).
    public var lastOutput: UInt8 = 0

    public init() {}
}

/// The PS/2 controller at ports 0x60 (data) and 0x64 (status/command), mainly as the reset button.
///
/// It answers the controller commands Linux's i8042 driver uses to find and set it up (command byte,
/// self test, interface tests, port enable/disable) so that probing neither fails nor waits for
/// timeouts. No keyboard or mouse is attached and no IRQ is raised: bytes sent to a device are
/// swallowed. Pulsing the CPU reset line (command 0xFE, or any 0xF0-0xFE pulse with bit 0 clear, or an
/// output-port write with bit 0 clear) asks the VM to reset. Register it at 0x60 with size 5; offsets
/// 1-3 (port 0x61 belongs to KVM's PIT) read 0xFF.
public final class I8042: BusDevice, Snapshottable {
    public static let stateVersion = 1
    public static let base: UInt64 = 0x60
    public static let size: UInt64 = 5

    static let dataOffset: UInt64 = 0
    static let commandOffset: UInt64 = 4
    /// Replies beyond this are dropped; the real controller holds one byte.
    static let outputLimit = 16

    private let control: any VMControl
    private let inner = Mutex(I8042State())

    public init(control: any VMControl) {
        self.control = control
    }

    public func reset() {
        inner.withLock { $0 = I8042State() }
    }

    public func read(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for i in data.indices {
            data[i] = inner.withLock { $0.read(offset + UInt64(i)) }
        }
    }

    public func write(offset: UInt64, data: UnsafeRawBufferPointer) {
        for i in data.indices {
            let wantsReset = inner.withLock { $0.write(offset + UInt64(i), data[i]) }
            if wantsReset { control.requestReset() }
        }
    }

    public func saveState() -> I8042State { inner.withLock { $0 } }

    public func restoreState(_ state: I8042State) throws(DeviceStateError) {
        guard state.output.count <= Self.outputLimit else {
            throw .invalid(device: "i8042", reason: "\(state.output.count) bytes in the output buffer")
        }
        inner.withLock { $0 = state }
    }
}

/// Controller commands (written to port 0x64) and status bits.
private enum KBC {
    static let readCommandByte: UInt8 = 0x20
    static let writeCommandByte: UInt8 = 0x60
    static let disableAux: UInt8 = 0xA7
    static let enableAux: UInt8 = 0xA8
    static let testAux: UInt8 = 0xA9
    static let selfTest: UInt8 = 0xAA
    static let testKeyboard: UInt8 = 0xAB
    static let disableKeyboard: UInt8 = 0xAD
    static let enableKeyboard: UInt8 = 0xAE
    static let readInputPort: UInt8 = 0xC0
    static let readOutputPort: UInt8 = 0xD0
    static let writeOutputPort: UInt8 = 0xD1
    static let writeKeyboardOutput: UInt8 = 0xD2
    static let writeAuxOutput: UInt8 = 0xD3
    static let writeToAux: UInt8 = 0xD4

    static let selfTestPassed: UInt8 = 0x55
    static let interfaceOK: UInt8 = 0x00

    static let ctrKeyboardDisabled: UInt8 = 0x10
    static let ctrAuxDisabled: UInt8 = 0x20
    static let ctrSystemFlag: UInt8 = 0x04

    static let statusOutputFull: UInt8 = 0x01
    static let statusSystemFlag: UInt8 = 0x04
    static let statusCommand: UInt8 = 0x08
    static let statusNotInhibited: UInt8 = 0x10
    static let statusAuxData: UInt8 = 0x20
}

extension I8042State {
    /// Status register: the input buffer is never busy (commands complete at once).
    var status: UInt8 {
        var value = KBC.statusNotInhibited
        if let head = output.first {
            value |= KBC.statusOutputFull
            if head.fromAux { value |= KBC.statusAuxData }
        }
        if commandByte & KBC.ctrSystemFlag != 0 { value |= KBC.statusSystemFlag }
        if lastWriteWasCommand { value |= KBC.statusCommand }
        return value
    }

    mutating func read(_ offset: UInt64) -> UInt8 {
        switch offset {
        case I8042.dataOffset:
            if !output.isEmpty { lastOutput = output.removeFirst().value }
            return lastOutput
        case I8042.commandOffset:
            return status
        default:
            return 0xFF
        }
    }

    /// Returns true when the write pulsed the CPU reset line.
    mutating func write(_ offset: UInt64, _ value: UInt8) -> Bool {
        switch offset {
        case I8042.dataOffset:
            lastWriteWasCommand = false
            return writeData(value)
        case I8042.commandOffset:
            lastWriteWasCommand = true
            return command(value)
        default:
            return false
        }
    }

    private mutating func reply(_ value: UInt8, fromAux: Bool = false) {
        guard output.count < I8042.outputLimit else { return }
        output.append(OutputByte(value: value, fromAux: fromAux))
    }

    private mutating func command(_ value: UInt8) -> Bool {
        pendingCommand = nil
        switch value {
        case KBC.readCommandByte:
            reply(commandByte)
        case 0x21...0x3F:
            reply(0)  // other controller RAM: unused
        case KBC.writeCommandByte...0x7F, KBC.writeOutputPort, KBC.writeKeyboardOutput,
             KBC.writeAuxOutput, KBC.writeToAux:
            pendingCommand = value
        case KBC.disableAux:
            commandByte |= KBC.ctrAuxDisabled
        case KBC.enableAux:
            commandByte &= ~KBC.ctrAuxDisabled
        case KBC.testAux, KBC.testKeyboard:
            reply(KBC.interfaceOK)
        case KBC.selfTest:
            commandByte |= KBC.ctrSystemFlag
            reply(KBC.selfTestPassed)
        case KBC.disableKeyboard:
            commandByte |= KBC.ctrKeyboardDisabled
        case KBC.enableKeyboard:
            commandByte &= ~KBC.ctrKeyboardDisabled
        case KBC.readInputPort:
            reply(0x80)  // keyboard not locked
        case KBC.readOutputPort:
            reply(outputPort)
        case 0xF0...0xFF:
            // Pulse the output-port lines whose bit is clear in the low nibble; bit 0 is CPU reset.
            return value & 0x01 == 0
        default:
            break  // unknown commands are ignored, as most controllers do
        }
        return false
    }

    private mutating func writeData(_ value: UInt8) -> Bool {
        guard let command = pendingCommand else {
            return false  // a byte for the keyboard: nothing is attached
        }
        pendingCommand = nil
        switch command {
        case KBC.writeCommandByte:
            commandByte = value
        case KBC.writeOutputPort:
            outputPort = value
            return value & 0x01 == 0
        case KBC.writeKeyboardOutput:
            reply(value)
        case KBC.writeAuxOutput:
            reply(value, fromAux: true)
        default:
            break  // 0xD4 (a byte for the mouse: nothing is attached) and RAM bytes 0x61-0x7F
        }
        return false
    }
}
