import Zstd
#if canImport(Glibc)
import Glibc
#endif

/// Turns one chunk of guest memory into a version-2 chunk record: finds zero pages, compresses each run of
/// the others that is worth it into the head, checksums raw runs where they lie in guest memory, checksums
/// the head. Raw runs are not copied: the writer sends them to the file from guest memory. One per writer
/// thread (it owns a zstd context).
final class ChunkEncoder {
    struct Result {
        /// The head, in the encoder's buffer (valid until its next chunk).
        var head: UnsafeRawBufferPointer
        /// The raw runs' bytes in guest memory, in run order: they follow the head, page-aligned in the file.
        var rawRuns: [UnsafeRawBufferPointer]
        var rawBytes: Int
        var zeroPages: Int
        var pages: Int
        /// Page data as stored: compressed frames plus raw runs.
        var storedBytes: Int

        /// The record's length when it starts at file offset `offset` (the raw runs' alignment depends on it).
        func recordLength(at offset: UInt64) -> Int {
            ChunkRecordLayout.v2.recordLength(at: offset, head: head.count, raw: rawBytes)
        }
    }

    private typealias L = ChunkRecordLayout
    private let layout = ChunkRecordLayout.v2
    private let compressor: ZstdCompressor
    private let probe = CompressibilityProbe()
    private let compression: MemoryCompression
    /// Compared against with `memcmp` (libc's vectorised compare runs at memory speed, ≈ 25 GB/s here),
    /// and written as the padding before raw runs.
    private let zeroPage: UnsafeMutableRawPointer
    private let out: UnsafeMutableRawBufferPointer

    /// Zero gaps shorter than this many pages inside a chunk are stored in the surrounding run instead of
    /// being skipped: zstd compresses zeros at ≈ 6 GB/s, while every extra frame costs a context reset
    /// (4 KiB frames compress at half the speed of 2 MiB ones, and worse). Leading and trailing zero pages
    /// and longer gaps are skipped. Restore writes the stored zeros, so this also bounds how many zero
    /// pages a restore touches.
    static let minimumSkippedGap = 16

    private var zeroFlags: [Bool]

    init(compression: MemoryCompression, chunkSize: Int) throws {
        compressor = try ZstdCompressor()
        self.compression = compression
        zeroPage = UnsafeMutableRawPointer.allocate(byteCount: L.pageSize, alignment: 64)
        zeroPage.initializeMemory(as: UInt8.self, repeating: 0, count: L.pageSize)
        zeroFlags = [Bool](repeating: false, count: L.pages(length: chunkSize))
        out = .allocate(byteCount: layout.headLength(length: chunkSize, runCount: L.maxRuns(length: chunkSize),
                                                     compressed: chunkSize), alignment: 64)
    }

    deinit {
        zeroPage.deallocate()
        out.deallocate()
    }

    /// Zero bytes for the padding between a head and its raw runs (at most 4095 are needed).
    var padding: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: zeroPage, count: L.pageSize) }

    /// Encodes `length` guest bytes at `source` (chunk at `offset` of range `range`).
    func encode(range: Int, offset: UInt64, source: UnsafeRawPointer, length: Int) -> Result {
        let pages = L.pages(length: length)
        let bitmap = out.baseAddress! + layout.headerSize
        let zeroPages = markZeroPages(source: source, length: length, bitmap: bitmap)
        var runCount = 0
        L.forEachRun(bitmap: bitmap, pages: pages) { _, _ in runCount += 1 }

        let runTable = layout.runTableOffset(length: length)
        var position = runTable + layout.runEntrySize * runCount
        var run = 0
        var rawRuns: [UnsafeRawBufferPointer] = []
        var rawBytes = 0
        L.forEachRun(bitmap: bitmap, pages: pages) { first, count in
            let bytes = L.runBytes(firstPage: first, pageCount: count, chunkLength: length)
            let src = source + first * L.pageSize
            var stored: Int? = nil
            if case let .zstd(level) = compression, probe.worthCompressing(src, count: bytes, with: compressor, level: level) {
                stored = compressor.compress(src, count: bytes, into: out.baseAddress! + position, capacity: bytes - 1,
                                             level: level)
            }
            let entry = runTable + layout.runEntrySize * run
            if let stored {
                out.storeLE(UInt32(stored), at: entry)
                out.storeLE(UInt64(0), at: entry + 4)
                position += stored
            } else {
                let raw = UnsafeRawBufferPointer(start: src, count: bytes)
                out.storeLE(UInt32(bytes), at: entry)
                out.storeLE(XXH64.hash(raw), at: entry + 4)
                rawRuns.append(raw)
                rawBytes += bytes
            }
            run += 1
        }
        let compressed = position - runTable - layout.runEntrySize * runCount

        out.storeLE(SnapshotFormat.chunkMagic, at: L.magicOffset)
        out.storeLE(UInt32(range), at: L.rangeOffset)
        out.storeLE(offset, at: L.offsetInRangeOffset)
        out.storeLE(UInt32(length), at: L.lengthOffset)
        out.storeLE(UInt32(runCount), at: L.runCountOffset)
        out.storeLE(UInt32(compressed), at: layout.compressedOffset)
        out.storeLE(UInt32(rawBytes), at: layout.rawOffset!)
        out.storeLE(UInt32(0), at: layout.flagsOffset)
        out.storeLE(UInt32(0), at: L.reservedOffset)
        let head = UnsafeMutableRawBufferPointer(rebasing: out[0..<position])
        out.storeLE(layout.checksum(head), at: layout.checksumOffset)
        return Result(head: UnsafeRawBufferPointer(head), rawRuns: rawRuns, rawBytes: rawBytes, zeroPages: zeroPages, pages: pages,
                      storedBytes: compressed + rawBytes)
    }

    /// Sets the bitmap bit of every zero page that is skipped (see `minimumSkippedGap`); returns their count.
    private func markZeroPages(source: UnsafeRawPointer, length: Int, bitmap: UnsafeMutableRawPointer) -> Int {
        let pages = L.pages(length: length)
        bitmap.initializeMemory(as: UInt8.self, repeating: 0, count: L.bitmapLength(length: length))
        for page in 0..<pages {
            let bytes = min(L.pageSize, length - page * L.pageSize)
            zeroFlags[page] = memcmp(source + page * L.pageSize, zeroPage, bytes) == 0
        }
        var zeroPages = 0
        var page = 0
        while page < pages {
            guard zeroFlags[page] else { page += 1; continue }
            let first = page
            while page < pages && zeroFlags[page] { page += 1 }
            if first == 0 || page == pages || page - first >= Self.minimumSkippedGap {
                for skipped in first..<page {
                    let byte = bitmap.load(fromByteOffset: skipped >> 3, as: UInt8.self)
                    bitmap.storeBytes(of: byte | (1 << UInt8(skipped & 7)), toByteOffset: skipped >> 3, as: UInt8.self)
                }
                zeroPages += page - first
            }
        }
        return zeroPages
    }
}
