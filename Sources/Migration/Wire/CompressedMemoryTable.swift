/// MemoryCompressed's payload: `u64 frame length`, then a range table (as Memory's). The zstd frame follows
/// the payload (not counted in the header's `length`, like Memory's page bytes) and decompresses to the
/// ranges' bytes, concatenated in table order.
public enum CompressedMemoryTable {
    static let prefixSize = 8

    public static func encode(_ ranges: [PageRange], frameLength: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(UInt64(frameLength))
        return out + RangeTable.encode(ranges)
    }

    /// The payload bounds: the prefix and one to 65 536 ranges.
    static var allowedLengths: ClosedRange<UInt64> {
        UInt64(prefixSize + RangeTable.entrySize)...UInt64(prefixSize) + Limits.maxRangeTableBytes
    }

    /// Decodes and checks the table (whole pages, no wrap-around), that the ranges hold at most
    /// `Limits.maxCompressedBatchBytes`, and that the frame is shorter than they are (the source sends a
    /// batch that does not shrink as plain Memory), so the frame the receiver buffers is bounded.
    public static func decode(_ raw: [UInt8]) throws(MigrationError) -> (ranges: [PageRange], frameLength: Int) {
        guard raw.count >= prefixSize else {
            throw .protocolViolation("MemoryCompressed payload of \(raw.count) bytes is too short")
        }
        let frameLength: UInt64 = raw.le(0)
        let ranges = try RangeTable.decode(Array(raw[prefixSize...]))
        var total: UInt64 = 0
        for range in ranges {
            guard range.length <= Limits.maxCompressedBatchBytes - total else {
                throw .protocolViolation("MemoryCompressed ranges hold more than \(Limits.maxCompressedBatchBytes) bytes")
            }
            total += range.length
        }
        guard frameLength > 0, frameLength < total else {
            throw .protocolViolation("MemoryCompressed declares a frame of \(frameLength) bytes for \(total) bytes of pages (1…\(total - 1) allowed)")
        }
        return (ranges, Int(frameLength))
    }
}
