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
    func place(run: Int) -> SnapshotPlace { .chunkRun(index: index, range: range, offset: offsetInRange, run: run) }
}

/// The deterministic split of ranges into chunks: each range from offset 0 in steps of the chunk size, the
/// last chunk of a range shorter. Writer and reader derive it from the range table, so a chunk record that
/// claims another position is detected. Computed on demand: a damaged or hostile range table may declare
/// far more chunks than the file holds, and must not make the reader allocate for each.
struct ChunkPlan {
    struct Entry {
        let range: Int
        let offset: UInt64
        let length: Int
    }

    let ranges: [MemoryRange]
    let chunkSize: Int
    /// firstChunk[r] = number of chunks before range r; the last element is the total.
    private let firstChunk: [Int]

    init(ranges: [MemoryRange], chunkSize: Int) {
        self.ranges = ranges
        self.chunkSize = chunkSize
        var first = [0]
        for range in ranges {
            first.append(first.last! + Int((range.size + UInt64(chunkSize) - 1) / UInt64(chunkSize)))
        }
        firstChunk = first
    }

    var count: Int { firstChunk.last! }

    subscript(index: Int) -> Entry {
        // The last range whose first chunk is <= index.
        var low = 0, high = ranges.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if firstChunk[mid] <= index { low = mid } else { high = mid - 1 }
        }
        let offset = UInt64(index - firstChunk[low]) * UInt64(chunkSize)
        return Entry(range: low, offset: offset, length: Int(min(UInt64(chunkSize), ranges[low].size - offset)))
    }
}

/// Validation shared by the writer (refuse bad input) and the reader (refuse a damaged range table).
enum RangeRules {
    /// Why `ranges` is not a valid memory layout, or nil if it is: sizes > 0, no overflow, no overlap.
    static func problem(_ ranges: [MemoryRange]) -> (index: Int, text: String)? {
        if ranges.count > SnapshotFormat.maxRanges { return (ranges.count - 1, "more than \(SnapshotFormat.maxRanges) ranges") }
        var total: UInt64 = 0
        for (i, r) in ranges.enumerated() {
            if r.size == 0 { return (i, "range is empty") }
            if r.guestAddress.addingReportingOverflow(r.size - 1).overflow { return (i, "range wraps past 2^64") }
            total += min(r.size, SnapshotFormat.maxMemorySize)
            if total > SnapshotFormat.maxMemorySize { return (i, "ranges total more than 2^48 bytes") }
        }
        let sorted = ranges.enumerated().sorted { $0.element.guestAddress < $1.element.guestAddress }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.element.guestAddress - a.element.guestAddress < a.element.size {
            return (b.offset, "range overlaps range \(a.offset) (\(a.element))")
        }
        return nil
    }
}
