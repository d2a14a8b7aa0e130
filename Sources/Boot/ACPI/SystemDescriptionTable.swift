/// An ACPI system description table: the common 36-byte header (signature, length, revision, checksum,
/// OEM ids, creator) followed by the table's own fields, addressed by their offsets in the spec.
struct SystemDescriptionTable {
    static let headerSize = 36
    /// Our creator id and revision (conventionally the ASL compiler's).
    static let creatorID = "SWFT"
    static let creatorRevision: UInt32 = 1

    var bytes: Bytes

    init(signature: String, revision: UInt8, length: Int = headerSize, config: ACPIConfig) {
        bytes = Bytes(count: length)
        bytes.put(ascii: signature, width: 4, at: 0)
        bytes[8] = revision
        bytes.put(ascii: config.oemID, width: 6, at: 10)
        bytes.put(ascii: config.oemTableID, width: 8, at: 16)
        bytes.put(UInt32(1), at: 24)                              // OEM revision
        bytes.put(ascii: Self.creatorID, width: 4, at: 28)
        bytes.put(Self.creatorRevision, at: 32)
    }

    /// The finished table: length and checksum filled in.
    func finished() -> [UInt8] {
        var out = bytes
        out.put(UInt32(out.count), at: 4)
        out[9] = 0
        out[9] = ACPIChecksum.complement(out.storage)
        return out.storage
    }
}

enum ACPIChecksum {
    /// The byte that makes `bytes` sum to zero (mod 256) when stored in their checksum field (itself 0).
    static func complement<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
        0 &- bytes.reduce(UInt8(0), &+)
    }

    static func sum<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 { bytes.reduce(UInt8(0), &+) }
}

/// A Generic Address Structure (12 bytes) naming an I/O port register.
enum GenericAddress {
    /// `accessSize`: 1 byte, 2 word, 3 dword, 4 qword.
    static func io(port: UInt16, bitWidth: UInt8, accessSize: UInt8) -> [UInt8] {
        [1, bitWidth, 0, accessSize] + AML.le(UInt64(port), 8)
    }
}
