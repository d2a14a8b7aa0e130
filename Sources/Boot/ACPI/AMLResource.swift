/// One resource descriptor inside a ResourceTemplate (ACPI 6.5 §6.4).
public enum AMLResource: Sendable, Equatable {
    /// IO(Decode16, min, max, alignment, length)
    case io(min: UInt16, max: UInt16, alignment: UInt8, length: UInt8)
    /// IRQNoFlags() { irqs }: ISA interrupts, edge-triggered, active-high, exclusive.
    case irq([UInt8])
    /// Interrupt(ResourceConsumer, Edge/Level, ActiveHigh/ActiveLow, Exclusive/Shared) { gsis }
    case interrupt(gsis: [UInt32], edge: Bool, activeLow: Bool, shared: Bool)
    /// WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, count)
    case wordBusNumber(min: UInt16, max: UInt16)
    /// WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, length)
    case wordIO(min: UInt16, max: UInt16)
    /// DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable/NonCacheable, ReadWrite, …)
    case dwordMemory(min: UInt32, max: UInt32, cacheable: Bool)
    /// QWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable/NonCacheable, ReadWrite, …)
    case qwordMemory(min: UInt64, max: UInt64, cacheable: Bool)
    /// Memory32Fixed(ReadWrite, base, length)
    case memory32Fixed(base: UInt32, length: UInt32)

    // Address space descriptor fields (§6.4.3.5).
    private static let memorySpace: UInt8 = 0, ioSpace: UInt8 = 1, busSpace: UInt8 = 2
    /// General flags: producer, positive decode, min and max fixed.
    private static let producerFixed: UInt8 = 0x0C

    public var bytes: [UInt8] {
        switch self {
        case let .io(min, max, alignment, length):
            return [0x47, 0x01] + AML.le(UInt64(min), 2) + AML.le(UInt64(max), 2) + [alignment, length]
        case let .irq(irqs):
            let mask = irqs.reduce(UInt16(0)) { $0 | 1 << UInt16($1) }
            return [0x22] + AML.le(UInt64(mask), 2)
        case let .interrupt(gsis, edge, activeLow, shared):
            precondition(!gsis.isEmpty && gsis.count <= 0xFF)
            let flags: UInt8 = 0x01 | (edge ? 0x02 : 0) | (activeLow ? 0x04 : 0) | (shared ? 0x08 : 0)
            let body = [flags, UInt8(gsis.count)] + gsis.flatMap { AML.le(UInt64($0), 4) }
            return [0x89] + AML.le(UInt64(body.count), 2) + body
        case let .wordBusNumber(min, max):
            return Self.word(type: Self.busSpace, typeFlags: 0, min: min, max: max)
        case let .wordIO(min, max):
            return Self.word(type: Self.ioSpace, typeFlags: 0x03, min: min, max: max)   // EntireRange
        case let .dwordMemory(min, max, cacheable):
            let body = [Self.memorySpace, Self.producerFixed, Self.memoryFlags(cacheable)]
                + [0, 0, 0, 0] + AML.le(UInt64(min), 4) + AML.le(UInt64(max), 4) + [0, 0, 0, 0]
                + AML.le(UInt64(max) - UInt64(min) + 1, 4)
            return [0x87] + AML.le(UInt64(body.count), 2) + body
        case let .qwordMemory(min, max, cacheable):
            let body = [Self.memorySpace, Self.producerFixed, Self.memoryFlags(cacheable)]
                + AML.le(0, 8) + AML.le(min, 8) + AML.le(max, 8) + AML.le(0, 8) + AML.le(max - min + 1, 8)
            return [0x8A] + AML.le(UInt64(body.count), 2) + body
        case let .memory32Fixed(base, length):
            return [0x86, 0x09, 0x00, 0x01] + AML.le(UInt64(base), 4) + AML.le(UInt64(length), 4)
        }
    }

    /// Read/write, and cacheable (1) or not (0) in bits 1–2.
    private static func memoryFlags(_ cacheable: Bool) -> UInt8 { 0x01 | (cacheable ? 0x02 : 0) }

    private static func word(type: UInt8, typeFlags: UInt8, min: UInt16, max: UInt16) -> [UInt8] {
        let body = [type, producerFixed, typeFlags] + AML.le(0, 2) + AML.le(UInt64(min), 2) + AML.le(UInt64(max), 2)
            + AML.le(0, 2) + AML.le(UInt64(max) - UInt64(min) + 1, 2)
        return [0x88] + AML.le(UInt64(body.count), 2) + body
    }
}
