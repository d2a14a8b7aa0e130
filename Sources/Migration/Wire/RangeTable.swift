/// A page-aligned range of guest physical memory.
public struct PageRange: Sendable, Equatable {
    public let gpa: UInt64
    public let length: UInt64

    public init(gpa: UInt64, length: UInt64) {
        self.gpa = gpa
        self.length = length
    }
}

/// The table of Memory and MemoryZero: N entries of `u64 gpa, u64 length` (CH's layout).
public enum RangeTable {
    public static let entrySize = 16

    public static func encode(_ ranges: [PageRange]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ranges.count * entrySize)
        for range in ranges {
            out.appendLE(range.gpa)
            out.appendLE(range.length)
        }
        return out
    }

    /// Decodes a table and checks each entry is whole pages and does not wrap around; whether it is guest
    /// RAM is for the receiver to check against its own layout.
    public static func decode(_ raw: [UInt8]) throws(MigrationError) -> [PageRange] {
        guard raw.count % entrySize == 0 else {
            throw .protocolViolation("range table of \(raw.count) bytes is not a multiple of \(entrySize)")
        }
        var ranges: [PageRange] = []
        ranges.reserveCapacity(raw.count / entrySize)
        for offset in stride(from: 0, to: raw.count, by: entrySize) {
            let range = PageRange(gpa: raw.le(offset), length: raw.le(offset + 8))
            guard range.length > 0, range.gpa % Limits.pageSize == 0, range.length % Limits.pageSize == 0,
                  range.gpa <= UInt64.max - range.length else {
                throw .protocolViolation("range 0x\(String(range.gpa, radix: 16))+0x\(String(range.length, radix: 16)) is not a non-empty run of whole \(Limits.pageSize)-byte pages")
            }
            ranges.append(range)
        }
        return ranges
    }
}
