/// MemoryFd's payload: `u32 version` (1), `u32 flags` (0), then a range table with one `u64 gpa, u64 length`
/// entry per memory fd, in the order of the fds that travel with it (SCM_RIGHTS): fd i backs entry i from
/// file offset 0.
///
/// CH's MemoryFd carries one `u32` slot and one fd per message; ours describes every region at once, so
/// the destination can check the whole layout against the Config before it maps anything.
public enum MemoryFdTable {
    public static let version: UInt32 = 1
    static let prefixSize = 8

    public static func encode(_ regions: [PageRange]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(version)
        out.appendLE(UInt32(0))
        return out + RangeTable.encode(regions)
    }

    /// The payload bounds for MemoryFd: at least one entry, at most `Limits.maxMemoryFds`.
    static var allowedLengths: ClosedRange<UInt64> {
        UInt64(prefixSize + RangeTable.entrySize)...UInt64(prefixSize + RangeTable.entrySize * Limits.maxMemoryFds)
    }

    /// Decodes and checks the version and each entry (whole pages, no wrap-around); whether the layout is
    /// the Config's is for the receiver to check.
    public static func decode(_ raw: [UInt8]) throws(MigrationError) -> [PageRange] {
        guard raw.count >= prefixSize else { throw .protocolViolation("MemoryFd payload of \(raw.count) bytes is too short") }
        let version: UInt32 = raw.le(0), flags: UInt32 = raw.le(4)
        guard version == Self.version else {
            throw .protocolViolation("MemoryFd format version \(version) is not supported (this VMM reads version \(Self.version))")
        }
        guard flags == 0 else { throw .protocolViolation("unknown MemoryFd flags 0x\(String(flags, radix: 16))") }
        return try RangeTable.decode(Array(raw[prefixSize...]))
    }
}
