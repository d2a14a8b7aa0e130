/// The byte layout of one memory chunk record (FORMAT.md "Chunk record"):
///
///     header (40) | zero-page bitmap | run table (u32 per run) | run payloads
///
/// A *run* is a maximal sequence of non-zero pages; each is stored as its own zstd frame (or raw when
/// zstd does not make it smaller), so that restore can decompress every run straight to its place in guest
/// memory while zero pages are never touched.
enum ChunkRecordLayout {
    static let headerSize = SnapshotFormat.chunkHeaderSize
    static let pageSize = SnapshotFormat.pageSize

    // Header field offsets.
    static let magicOffset = 0
    static let rangeOffset = 4
    static let offsetInRangeOffset = 8
    static let lengthOffset = 16
    static let runCountOffset = 20
    static let storedOffset = 24
    static let flagsOffset = 28
    static let checksumOffset = 32

    static func pages(length: Int) -> Int { (length + pageSize - 1) / pageSize }
    static func bitmapLength(length: Int) -> Int { (pages(length: length) + 7) / 8 }

    static func recordLength(length: Int, runCount: Int, stored: Int) -> Int {
        headerSize + bitmapLength(length: length) + 4 * runCount + stored
    }

    /// The largest record a chunk of `chunkSize` bytes can need (alternating zero and data pages).
    static func maxRecordLength(chunkSize: Int) -> Int {
        headerSize + bitmapLength(length: chunkSize) + 4 * ((pages(length: chunkSize) + 1) / 2) + chunkSize
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

    /// The record's checksum: XXH64 of the whole record with the checksum field taken as zero.
    static func checksum(_ record: UnsafeMutableRawBufferPointer) -> UInt64 {
        let saved: UInt64 = UnsafeRawBufferPointer(record).le(checksumOffset)
        record.storeLE(UInt64(0), at: checksumOffset)
        defer { record.storeLE(saved, at: checksumOffset) }
        return XXH64.hash(UnsafeRawBufferPointer(record))
    }
}
