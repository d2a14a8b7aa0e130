/// The byte layout of one memory chunk record (FORMAT.md "Chunk record"), for both format versions:
///
///     version 1:  header (40) | zero-page bitmap | run table (u32 per run)            | run payloads
///     version 2:  header (48) | zero-page bitmap | run table (u32 + u64 per run)      | compressed runs
///                 [| zero padding to a 4096-byte file offset | raw runs]
///
/// A *run* is a maximal sequence of non-zero pages; each is stored as its own zstd frame (or raw when
/// zstd does not make it smaller), so that restore can put every run straight in its place in guest
/// memory while zero pages are never touched. Version 2 moves the raw runs out of the checksummed *head*
/// to a page-aligned file offset, each with its own checksum, so that they can be written from guest
/// memory without a copy and mapped into a restored guest without being read.
struct ChunkRecordLayout {
    static let pageSize = SnapshotFormat.pageSize

    let version: UInt32
    let headerSize: Int
    /// Bytes per run-table entry: the stored size, and in version 2 the raw run's XXH64.
    let runEntrySize: Int
    /// Version 1: "stored bytes" (all runs); version 2: the compressed runs' bytes in the head.
    let compressedOffset: Int
    /// Version 2 only: the raw runs' bytes after the head.
    let rawOffset: Int?
    let flagsOffset: Int
    let checksumOffset: Int

    static let v1 = ChunkRecordLayout(version: 1, headerSize: 40, runEntrySize: 4, compressedOffset: 24, rawOffset: nil,
                                      flagsOffset: 28, checksumOffset: 32)
    static let v2 = ChunkRecordLayout(version: 2, headerSize: 48, runEntrySize: 12, compressedOffset: 24, rawOffset: 28,
                                      flagsOffset: 32, checksumOffset: 40)

    /// Version 3 changed only state.bin's payloads: its chunks are version 2's.
    static func forVersion(_ version: UInt32) -> ChunkRecordLayout { version == 1 ? .v1 : .v2 }

    // Header fields both versions share.
    static let magicOffset = 0
    static let rangeOffset = 4
    static let offsetInRangeOffset = 8
    static let lengthOffset = 16
    static let runCountOffset = 20
    /// Version 2: must be 0.
    static let reservedOffset = 36

    static func pages(length: Int) -> Int { (length + pageSize - 1) / pageSize }
    static func bitmapLength(length: Int) -> Int { (pages(length: length) + 7) / 8 }
    /// The most runs a chunk can have (data and zero pages alternating).
    static func maxRuns(length: Int) -> Int { (pages(length: length) + 1) / 2 }

    func runTableOffset(length: Int) -> Int { headerSize + Self.bitmapLength(length: length) }

    /// The checksummed head: everything but version 2's padding and raw runs.
    func headLength(length: Int, runCount: Int, compressed: Int) -> Int {
        runTableOffset(length: length) + runEntrySize * runCount + compressed
    }

    /// Where a record's raw runs start: right after a head that ends at `headEnd`, at the next multiple of
    /// 4096 of the file offset.
    static func rawStart(headEnd: UInt64) -> UInt64 {
        let alignment = UInt64(SnapshotFormat.rawRunAlignment)
        return (headEnd + alignment - 1) / alignment * alignment
    }

    /// The whole record's length, from its file offset and what its header says.
    func recordLength(at offset: UInt64, head: Int, raw: Int) -> Int {
        raw == 0 ? head : Int(Self.rawStart(headEnd: offset + UInt64(head)) - offset) + raw
    }

    /// The largest record a chunk of `chunkSize` bytes can need (alternating zero and data pages, all of
    /// it stored, and version 2's padding).
    func maxRecordLength(chunkSize: Int) -> Int {
        let padding = version == 1 ? 0 : SnapshotFormat.rawRunAlignment - 1
        return headLength(length: chunkSize, runCount: Self.maxRuns(length: chunkSize), compressed: chunkSize) + padding
    }

    /// Calls `body(firstPage, pageCount)` for each run of non-zero pages (bit set = zero page).
    @inline(__always)
    static func forEachRun(bitmap: UnsafeRawPointer, pages: Int, _ body: (Int, Int) throws -> Void) rethrows {
        var page = 0
        while page < pages {
            if isZero(bitmap, page) {
                page += 1
                continue
            }
            let first = page
            while page < pages && !isZero(bitmap, page) { page += 1 }
            try body(first, page - first)
        }
    }

    @inline(__always)
    static func isZero(_ bitmap: UnsafeRawPointer, _ page: Int) -> Bool {
        bitmap.load(fromByteOffset: page >> 3, as: UInt8.self) & (1 << UInt8(page & 7)) != 0
    }

    /// The guest bytes a run covers (the last page of a range may be partial).
    static func runBytes(firstPage: Int, pageCount: Int, chunkLength: Int) -> Int {
        min(pageCount * pageSize, chunkLength - firstPage * pageSize)
    }

    /// The head's checksum: XXH64 of the head with the checksum field taken as zero.
    func checksum(_ head: UnsafeMutableRawBufferPointer) -> UInt64 {
        let saved: UInt64 = UnsafeRawBufferPointer(head).le(checksumOffset)
        head.storeLE(UInt64(0), at: checksumOffset)
        defer { head.storeLE(saved, at: checksumOffset) }
        return XXH64.hash(UnsafeRawBufferPointer(head))
    }
}
