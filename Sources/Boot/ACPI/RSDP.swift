/// The ACPI 2.0+ Root System Description Pointer (36 bytes), pointing at the XSDT only.
enum RSDP {
    static let size = 36

    static func bytes(xsdt: UInt64, oemID: String) -> [UInt8] {
        var b = Bytes(count: size)
        b.put(ascii: "RSD PTR ", width: 8, at: 0)
        b.put(ascii: oemID, width: 6, at: 9)
        b[15] = 2                                  // revision: ACPI 2.0+
        b.put(UInt32(0), at: 16)                   // no RSDT
        b.put(UInt32(size), at: 20)
        b.put(xsdt, at: 24)
        b[8] = ACPIChecksum.complement(b.storage[0..<20])
        b[32] = ACPIChecksum.complement(b.storage)
        return b.storage
    }
}
