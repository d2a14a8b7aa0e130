/// Everything a guest can observe of a `Serial8250`, as plain data.
///
/// Derived registers (IIR, LSR, MSR line levels) are not stored: they are recomputed from these
/// fields, so a restored UART cannot disagree with itself.
public struct Serial8250State: Codable, Sendable, Equatable {
    public var interruptEnable: UInt8 = 0
    public var lineControl: UInt8 = 0
    public var modemControl: UInt8 = 0
    public var scratch: UInt8 = 0
    /// Divisor latch; 12 is 9600 baud at the PC's 1.8432 MHz clock (never used: no baud delay).
    public var divisorLow: UInt8 = 12
    public var divisorHigh: UInt8 = 0
    /// FIFO enable (bit 0) and receive trigger level (bits 6-7) as last written to FCR.
    public var fifoControl: UInt8 = 0
    /// LSR.OE: a received byte was lost since LSR was last read.
    public var overrun: Bool = false
    /// MSR bits 0-3 (changes of the modem lines since MSR was last read).
    public var modemStatusDeltas: UInt8 = 0
    /// The latched "THR empty" interrupt (cleared by reading IIR while it is the source, or by
    /// writing THR; set again once the byte has gone).
    public var transmitEmptyInterrupt: Bool = false
    /// Received bytes not yet read by the guest, oldest first.
    public var receiveFifo: [UInt8] = []

    public init() {}
}
