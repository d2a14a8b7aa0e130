/// The fixed parts of `memory.bin` around the chunk records (FORMAT.md "memory.bin"): the range table after
/// the header, and the chunk index plus trailer at the end. The trailer is written last, so a file without
/// one is known to be incomplete.
struct RangeTable {
    let ranges: [MemoryRange]
    let chunkSize: Int

    private static let file = SnapshotFormat.memoryFileName

    static func encodedLength(rangeCount: Int) -> Int { SnapshotFormat.rangeTableHeaderSize + 16 * rangeCount + 8 }

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.encodedLength(rangeCount: ranges.count))
        w.u32(SnapshotFormat.rangeTableMagic)
        w.u32(UInt32(ranges.count))
        w.u32(UInt32(SnapshotFormat.pageSize))
        w.u32(UInt32(chunkSize))
        for range in ranges {
            w.u64(range.guestAddress)
            w.u64(range.size)
        }
        w.u64(XXH64.hash(w.bytes))
        return w.bytes
    }

    /// Reads and checks the table at the start of `file` (right after the header).
    static func read(from io: SnapshotFileIO, fileSize: UInt64) throws -> RangeTable {
        let start = UInt64(FileHeader.size)
        let head = try io.read(count: SnapshotFormat.rangeTableHeaderSize, at: start)
        guard head.count == SnapshotFormat.rangeTableHeaderSize else {
            throw SnapshotError.truncated(file: file, place: .rangeTable, offset: start, fileSize: fileSize)
        }
        func damaged(_ problem: String) -> SnapshotError { .corrupt(file: file, place: .rangeTable, problem: problem) }
        let (magic, count) = head.withUnsafeBytes { ($0.le(0, as: UInt32.self), Int($0.le(4, as: UInt32.self))) }
        guard magic == SnapshotFormat.rangeTableMagic else { throw damaged("bad range table magic") }
        guard count <= SnapshotFormat.maxRanges else { throw damaged("range count \(count) out of range") }
        let bytes = try io.read(count: encodedLength(rangeCount: count), at: start)
        guard bytes.count == encodedLength(rangeCount: count) else {
            throw SnapshotError.truncated(file: file, place: .rangeTable, offset: start, fileSize: fileSize)
        }
        return try bytes.withUnsafeBytes { raw in
            guard XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)])) == raw.le(raw.count - 8, as: UInt64.self) else {
                throw SnapshotError.checksumMismatch(file: file, place: .rangeTable)
            }
            let pageSize = Int(raw.le(8, as: UInt32.self)), chunkSize = Int(raw.le(12, as: UInt32.self))
            guard pageSize == SnapshotFormat.pageSize else { throw damaged("page size \(pageSize), expected 4096") }
            guard SnapshotFormat.chunkSizeLimits.contains(chunkSize), chunkSize % pageSize == 0 else {
                throw damaged("chunk size \(chunkSize) is not a whole number of pages in 64 KiB…64 MiB")
            }
            var r = ByteReader(raw, at: SnapshotFormat.rangeTableHeaderSize)
            var ranges: [MemoryRange] = []
            for _ in 0..<count { ranges.append(MemoryRange(guestAddress: r.u64()!, size: r.u64()!)) }
            if let (index, problem) = RangeRules.problem(ranges) { throw damaged("range \(index): \(problem)") }
            return RangeTable(ranges: ranges, chunkSize: chunkSize)
        }
    }
}

/// The trailer: where the chunk index is and the totals `inspect` shows without reading every chunk.
struct MemoryTrailer: Equatable {
    var indexOffset: UInt64
    var chunkCount: UInt64
    var totalBytes: UInt64
    var zeroPages: UInt64
    var storedBytes: UInt64
    /// Version 2: the part of `storedBytes` in page-aligned raw runs (what an on-demand restore can map);
    /// version 1: 0 (the field was reserved).
    var rawBytes: UInt64
    /// XXH64 of the index and the trailer's first 56 bytes; `state.bin` records it to bind the two files.
    var checksum: UInt64 = 0

    static let size = SnapshotFormat.memoryTrailerSize

    static func indexLength(chunkCount: Int) -> Int { SnapshotFormat.indexHeaderSize + 8 * chunkCount }

    /// Encodes the index of record offsets followed by the trailer, filling in `checksum`.
    mutating func encodeWithIndex(_ offsets: [UInt64]) -> [UInt8] {
        var w = ByteWriter(capacity: Self.indexLength(chunkCount: offsets.count) + Self.size)
        w.u32(SnapshotFormat.indexMagic)
        w.u32(0)
        w.u64(UInt64(offsets.count))
        for offset in offsets { w.u64(offset) }
        w.u64(SnapshotFormat.memoryTrailerMagic)
        w.u64(indexOffset)
        w.u64(chunkCount)
        w.u64(totalBytes)
        w.u64(zeroPages)
        w.u64(storedBytes)
        w.u64(rawBytes)
        checksum = XXH64.hash(w.bytes)
        w.u64(checksum)
        return w.bytes
    }
}
