/// A range of guest physical memory as the snapshot records it.
public struct MemoryRange: Sendable, Hashable, CustomStringConvertible {
    public var guestAddress: UInt64
    public var size: UInt64

    public init(guestAddress: UInt64, size: UInt64) {
        self.guestAddress = guestAddress
        self.size = size
    }

    public var description: String { "\(hex(guestAddress))+\(hex(size))" }
}

/// One memory chunk's place in the guest and in `memory.bin` (for inspection and tests).
public struct ChunkLocation: Sendable, Equatable {
    public let index: Int
    public let range: Int
    /// Byte offset of the chunk inside its range.
    public let offsetInRange: UInt64
    /// Guest bytes the chunk covers.
    public let length: Int
    /// Where its record starts in `memory.bin`, and its length.
    public let fileOffset: UInt64
    public let recordLength: Int

    var place: SnapshotPlace { .chunk(index: index, range: range, offset: offsetInRange) }
}

/// The deterministic split of ranges into chunks: each range from offset 0 in steps of the chunk size, the
/// last chunk of a range shorter. Writer and reader derive it from the range table, so a chunk record that
/// claims another position is detected.
struct ChunkPlan {
    struct Entry {
        let range: Int
        let offset: UInt64
        let length: Int
    }

    let entries: [Entry]

    init(ranges: [MemoryRange], chunkSize: Int) {
        var entries: [Entry] = []
        for (index, range) in ranges.enumerated() {
            var offset: UInt64 = 0
            while offset < range.size {
                let length = Int(min(UInt64(chunkSize), range.size - offset))
                entries.append(Entry(range: index, offset: offset, length: length))
                offset += UInt64(length)
            }
        }
        self.entries = entries
    }

    static func chunkCount(ranges: [MemoryRange], chunkSize: Int) -> UInt64 {
        ranges.reduce(0) { $0 + ($1.size + UInt64(chunkSize) - 1) / UInt64(chunkSize) }
    }
}

/// Validation shared by the writer (refuse bad input) and the reader (refuse a damaged range table).
enum RangeRules {
    /// Why `ranges` is not a valid memory layout, or nil if it is: sizes > 0, no overflow, no overlap.
    static func problem(_ ranges: [MemoryRange]) -> (index: Int, text: String)? {
        if ranges.count > SnapshotFormat.maxRanges { return (ranges.count - 1, "more than \(SnapshotFormat.maxRanges) ranges") }
        for (i, r) in ranges.enumerated() {
            if r.size == 0 { return (i, "range is empty") }
            if r.guestAddress.addingReportingOverflow(r.size - 1).overflow { return (i, "range wraps past 2^64") }
        }
        let sorted = ranges.enumerated().sorted { $0.element.guestAddress < $1.element.guestAddress }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.element.guestAddress - a.element.guestAddress < a.element.size {
            return (b.offset, "range overlaps range \(a.offset) (\(a.element))")
        }
        return nil
    }
}
