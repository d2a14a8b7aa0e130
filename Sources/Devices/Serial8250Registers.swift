/// 16550A register offsets and bits (National Semiconductor PC16550D data sheet), named so that the
/// device code reads like the data sheet.
enum UART {
    // Offsets from the base port.
    static let data: UInt64 = 0        // RBR (read) / THR (write); DLL when DLAB
    static let interruptEnable: UInt64 = 1  // IER; DLM when DLAB
    static let interruptId: UInt64 = 2      // IIR (read) / FCR (write)
    static let lineControl: UInt64 = 3
    static let modemControl: UInt64 = 4
    static let lineStatus: UInt64 = 5
    static let modemStatus: UInt64 = 6
    static let scratch: UInt64 = 7

    // IER
    static let ierReceivedData: UInt8 = 0x01
    static let ierTransmitEmpty: UInt8 = 0x02
    static let ierLineStatus: UInt8 = 0x04
    static let ierModemStatus: UInt8 = 0x08

    // IIR: bit 0 clear means "interrupt pending"; bits 1-3 name the source; 6-7 say FIFOs are on.
    static let iirNoInterrupt: UInt8 = 0x01
    static let iirLineStatus: UInt8 = 0x06
    static let iirReceivedData: UInt8 = 0x04
    static let iirTransmitEmpty: UInt8 = 0x02
    static let iirModemStatus: UInt8 = 0x00
    static let iirFifoEnabled: UInt8 = 0xC0

    // FCR
    static let fcrEnable: UInt8 = 0x01
    static let fcrClearReceive: UInt8 = 0x02
    static let fcrClearTransmit: UInt8 = 0x04
    static let fcrTriggerMask: UInt8 = 0xC0

    // LCR
    static let lcrDivisorLatch: UInt8 = 0x80

    // MCR
    static let mcrDTR: UInt8 = 0x01
    static let mcrRTS: UInt8 = 0x02
    static let mcrOut1: UInt8 = 0x04
    static let mcrOut2: UInt8 = 0x08
    static let mcrLoopback: UInt8 = 0x10
    static let mcrMask: UInt8 = 0x1F

    // LSR
    static let lsrDataReady: UInt8 = 0x01
    static let lsrOverrun: UInt8 = 0x02
    static let lsrTransmitEmpty: UInt8 = 0x20  // THRE
    static let lsrTransmitterIdle: UInt8 = 0x40  // TEMT

    // MSR: low nibble = changes since last read, high nibble = line levels.
    static let msrDeltaCTS: UInt8 = 0x01
    static let msrDeltaDSR: UInt8 = 0x02
    static let msrTrailingRI: UInt8 = 0x04
    static let msrDeltaDCD: UInt8 = 0x08
    static let msrCTS: UInt8 = 0x10
    static let msrDSR: UInt8 = 0x20
    static let msrRI: UInt8 = 0x40
    static let msrDCD: UInt8 = 0x80
}
