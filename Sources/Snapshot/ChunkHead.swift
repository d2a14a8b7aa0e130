/// A chunk record's head after its checksum matched: the structure checked against the chunk plan, and
/// where each run's bytes are. Restore, on-demand mapping and verification all act on this list, so the
/// two format versions differ only in how it is built.
struct ChunkHead {
    enum Storage: Equatable {
        /// A zstd frame inside the head.
        case compressed(headOffset: Int, size: Int)
        /// Version 1: raw bytes inside the head (covered by the head's checksum).
        case inline(headOffset: Int)
        /// Version 2: raw bytes at this page-aligned file offset, with their own XXH64.
        case file(offset: UInt64, checksum: UInt64)
    }

    struct Run {
        let index: Int
        let firstPage: Int
        /// Guest bytes (whole pages except at the end of a range).
        let bytes: Int
        let storage: Storage
    }

    /// The head's bytes (the decoder's buffer: valid until its next chunk).
    let bytes: UnsafeRawBufferPointer
    let pages: Int
    let runs: [Run]

    private typealias L = ChunkRecordLayout

    /// Checks everything the checksum cannot: that the record is the one the plan expects at this place, and
    /// that bitmap, run table and sizes agree. Only a broken writer produces a record that passes the
    /// checksum and fails here.
    init(bytes: UnsafeRawBufferPointer, layout: ChunkRecordLayout, chunk: ChunkLocation) throws {
        func damaged(_ problem: String) -> SnapshotError {
            .corrupt(file: SnapshotFormat.memoryFileName, place: chunk.place, problem: problem)
        }
        let range: UInt32 = bytes.le(L.rangeOffset), offset: UInt64 = bytes.le(L.offsetInRangeOffset)
        let length = Int(bytes.le(L.lengthOffset, as: UInt32.self))
        guard range == chunk.range, offset == chunk.offsetInRange, length == chunk.length else {
            throw damaged("record is for range \(range) +\(hex(offset)) (\(length) bytes)")
        }
        guard bytes.le(layout.flagsOffset, as: UInt32.self) == 0 else { throw damaged("unknown chunk flags") }
        if layout.version >= 2, bytes.le(L.reservedOffset, as: UInt32.self) != 0 {
            throw damaged("reserved header field is not 0")
        }
        let pages = L.pages(length: length)
        let bitmap = bytes.baseAddress! + layout.headerSize
        if pages % 8 != 0, bitmap.load(fromByteOffset: pages / 8, as: UInt8.self) >> UInt8(pages % 8) != 0 {
            throw damaged("zero-page bitmap marks pages past the chunk end")
        }
        let runCount = Int(bytes.le(L.runCountOffset, as: UInt32.self))
        let compressedTotal = Int(bytes.le(layout.compressedOffset, as: UInt32.self))
        let rawTotal = layout.rawOffset.map { Int(bytes.le($0, as: UInt32.self)) } ?? 0
        let runTable = layout.runTableOffset(length: length)
        var headCursor = runTable + layout.runEntrySize * runCount
        var fileCursor = L.rawStart(headEnd: chunk.fileOffset + UInt64(bytes.count))
        var runs: [Run] = []
        runs.reserveCapacity(runCount)
        var compressed = 0, raw = 0, problem: String?
        L.forEachRun(bitmap: bitmap, pages: pages) { first, count in
            let index = runs.count
            guard problem == nil, index < runCount else { problem = problem ?? "the bitmap has more runs than \(runCount)"; return }
            let entry = runTable + layout.runEntrySize * index
            let size = Int(bytes.le(entry, as: UInt32.self))
            let runBytes = L.runBytes(firstPage: first, pageCount: count, chunkLength: length)
            let storage: Storage
            if size == 0 || size > runBytes {
                problem = "run \(index) at page \(first) has impossible stored size \(size)"
                return
            } else if size < runBytes {
                storage = .compressed(headOffset: headCursor, size: size)
                headCursor += size
                compressed += size
            } else if layout.version == 1 {
                storage = .inline(headOffset: headCursor)
                headCursor += size
                compressed += size
            } else {
                storage = .file(offset: fileCursor, checksum: bytes.le(entry + 4))
                fileCursor += UInt64(size)
                raw += size
            }
            if layout.version >= 2, case .compressed = storage, bytes.le(entry + 4, as: UInt64.self) != 0 {
                problem = "run \(index) is compressed but has a raw checksum"
            }
            runs.append(Run(index: index, firstPage: first, bytes: runBytes, storage: storage))
        }
        if let problem { throw damaged(problem) }
        guard runs.count == runCount, compressed == compressedTotal, raw == rawTotal else {
            throw damaged("bitmap has \(runs.count) runs holding \(compressed) bytes in the head and \(raw) raw; "
                          + "header says \(runCount) runs, \(compressedTotal) and \(rawTotal)")
        }
        self.bytes = bytes
        self.pages = pages
        self.runs = runs
    }

    /// Calls `body(page)` for each skipped zero page.
    func forEachZeroPage(layout: ChunkRecordLayout, _ body: (Int) -> Void) {
        let bitmap = bytes.baseAddress! + layout.headerSize
        for page in 0..<pages where L.isZero(bitmap, page) { body(page) }
    }
}
