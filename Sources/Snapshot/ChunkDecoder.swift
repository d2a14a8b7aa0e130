import Zstd
#if canImport(Glibc)
import Glibc
#endif

/// Reads one chunk record's head, verifies it completely (checksum, position, structure) and only then
/// puts its runs into guest memory: compressed runs are decompressed straight to their guest address, raw
/// runs are read straight there (version 2: then checked against their own checksum) or, on demand,
/// mapped there. One per restore thread.
final class ChunkDecoder {
    struct Result {
        var zeroPages = 0
        var dataBytes = 0
        var mappedRuns = 0
        var mappedBytes = 0
    }

    private typealias L = ChunkRecordLayout
    private static let file = SnapshotFormat.memoryFileName
    private let layout: ChunkRecordLayout
    private let decompressor: ZstdDecompressor
    private let buffer: UnsafeMutableRawBufferPointer
    private var scratch: UnsafeMutableRawBufferPointer?
    private let chunkSize: Int

    init(layout: ChunkRecordLayout, chunkSize: Int) throws {
        decompressor = try ZstdDecompressor()
        self.layout = layout
        self.chunkSize = chunkSize
        buffer = .allocate(byteCount: layout.maxRecordLength(chunkSize: chunkSize), alignment: 64)
    }

    deinit {
        buffer.deallocate()
        scratch?.deallocate()
    }

    /// Restores chunk `chunk` to `destination` (the chunk's first guest byte). Zero pages are left alone
    /// unless `zeroFill` (the caller's memory is not known to be zero). With a `mapper`, raw runs it can map
    /// are mapped instead of read (and verified later, by the mapper's owner).
    func restore(_ chunk: ChunkLocation, from file: SnapshotFileIO, into destination: UnsafeMutableRawPointer,
                 zeroFill: Bool, mapper: RawRunMapper? = nil) throws -> Result {
        let head = try load(chunk, from: file)
        var result = try place(head, chunk: chunk, from: file, into: destination, mapper: mapper)
        head.forEachZeroPage(layout: layout) { page in
            result.zeroPages += 1
            if zeroFill {
                memset(destination + page * L.pageSize, 0, min(L.pageSize, chunk.length - page * L.pageSize))
            }
        }
        return result
    }

    /// Checks chunk `chunk` without a destination: checksums, structure, and that every frame decodes.
    func verify(_ chunk: ChunkLocation, from file: SnapshotFileIO) throws -> Result {
        let head = try load(chunk, from: file)
        var result = try place(head, chunk: chunk, from: file, into: scratchBuffer(), mapper: nil)
        head.forEachZeroPage(layout: layout) { _ in result.zeroPages += 1 }
        return result
    }

    /// Checks a raw run that was mapped rather than read: its bytes in the file against its checksum. Read
    /// through the page cache: the guest will fault these pages in from there.
    func verify(_ run: RawRunMapper.MappedRun, from file: SnapshotFileIO) throws {
        try readRaw(from: file, at: run.fileOffset, into: scratchBuffer(), bytes: run.bytes, checksum: run.checksum,
                    place: run.place, bulk: false)
    }

    private func scratchBuffer() -> UnsafeMutableRawPointer {
        if scratch == nil { scratch = .allocate(byteCount: chunkSize, alignment: 4096) }
        return scratch!.baseAddress!
    }

    /// Reads the head (and version 2's padding), verifies its checksum, then its structure.
    private func load(_ chunk: ChunkLocation, from file: SnapshotFileIO) throws -> ChunkHead {
        func damaged(_ problem: String) -> SnapshotError { .corrupt(file: Self.file, place: chunk.place, problem: problem) }
        guard chunk.recordLength >= layout.headerSize, chunk.recordLength <= buffer.count else {
            throw damaged("record length \(chunk.recordLength) is impossible for chunk size \(chunkSize)")
        }
        // Version 2: the file page holding the header, which usually holds the whole head; not more, so that
        // no raw bytes come in through the page cache (see `SnapshotFileIO.readBulk`).
        let headerPageEnd = L.rawStart(headEnd: chunk.fileOffset + UInt64(layout.headerSize))
        let first = layout.version == 1 ? chunk.recordLength : min(chunk.recordLength, Int(headerPageEnd - chunk.fileOffset))
        try readExactly(file, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<first]), at: chunk.fileOffset,
                        place: chunk.place)
        let view = UnsafeRawBufferPointer(buffer)
        guard view.le(L.magicOffset, as: UInt32.self) == SnapshotFormat.chunkMagic else {
            throw damaged("bad chunk magic at \(hex(chunk.fileOffset))")
        }
        // The header's sizes decide how many bytes the checksum covers: a header that does not add up to
        // the record the index describes cannot be checked, which is what a checksum mismatch means.
        let length = Int(view.le(L.lengthOffset, as: UInt32.self))
        let head = layout.headLength(length: length, runCount: Int(view.le(L.runCountOffset, as: UInt32.self)),
                                     compressed: Int(view.le(layout.compressedOffset, as: UInt32.self)))
        let raw = layout.rawOffset.map { Int(view.le($0, as: UInt32.self)) } ?? 0
        guard length <= chunkSize, head <= chunk.recordLength,
              layout.recordLength(at: chunk.fileOffset, head: head, raw: raw) == chunk.recordLength else {
            throw SnapshotError.checksumMismatch(file: Self.file, place: chunk.place)
        }
        let headAndPadding = chunk.recordLength - raw
        if headAndPadding > first {
            try readExactly(file, into: UnsafeMutableRawBufferPointer(rebasing: buffer[first..<headAndPadding]),
                            at: chunk.fileOffset + UInt64(first), place: chunk.place)
        }
        guard layout.checksum(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<head]))
                == view.le(layout.checksumOffset, as: UInt64.self) else {
            throw SnapshotError.checksumMismatch(file: Self.file, place: chunk.place)
        }
        if view[head..<headAndPadding].contains(where: { $0 != 0 }) {
            throw damaged("padding before the raw runs is not zero")
        }
        return try ChunkHead(bytes: UnsafeRawBufferPointer(rebasing: view[0..<head]), layout: layout, chunk: chunk)
    }

    private func place(_ head: ChunkHead, chunk: ChunkLocation, from file: SnapshotFileIO,
                       into destination: UnsafeMutableRawPointer, mapper: RawRunMapper?) throws -> Result {
        var result = Result()
        let base = head.bytes.baseAddress!
        for run in head.runs {
            let dst = destination + run.firstPage * L.pageSize
            result.dataBytes += run.bytes
            switch run.storage {
            case let .compressed(offset, size):
                if let error = decompressor.decompress(base + offset, count: size, into: dst, count: run.bytes) {
                    throw SnapshotError.corrupt(file: Self.file, place: chunk.place(run: run.index),
                                                problem: "at page \(run.firstPage): \(error)")
                }
            case let .inline(offset):
                dst.copyMemory(from: base + offset, byteCount: run.bytes)
            case let .file(offset, checksum):
                let mapped = RawRunMapper.MappedRun(place: chunk.place(run: run.index), fileOffset: offset,
                                                    bytes: run.bytes, checksum: checksum)
                if let mapper, try mapper.map(mapped, from: file, into: dst) {
                    result.mappedRuns += 1
                    result.mappedBytes += run.bytes
                } else {
                    try readRaw(from: file, at: offset, into: dst, bytes: run.bytes, checksum: checksum,
                                place: mapped.place)
                }
            }
        }
        return result
    }

    /// Reads a version-2 raw run straight to its destination and checks it there; `bulk`: uncached parts with
    /// O_DIRECT (`SnapshotFileIO.readBulk`).
    private func readRaw(from file: SnapshotFileIO, at offset: UInt64, into destination: UnsafeMutableRawPointer,
                         bytes: Int, checksum: UInt64, place: SnapshotPlace, bulk: Bool = true) throws {
        let target = UnsafeMutableRawBufferPointer(start: destination, count: bytes)
        try readExactly(file, into: target, at: offset, place: place, bulk: bulk)
        guard XXH64.hash(UnsafeRawBufferPointer(target)) == checksum else {
            throw SnapshotError.checksumMismatch(file: Self.file, place: place)
        }
    }

    private func readExactly(_ file: SnapshotFileIO, into bytes: UnsafeMutableRawBufferPointer, at offset: UInt64,
                             place: SnapshotPlace, bulk: Bool = false) throws {
        let n = try bulk ? file.readBulk(into: bytes, at: offset) : file.read(into: bytes, at: offset)
        guard n == bytes.count else {
            throw SnapshotError.truncated(file: Self.file, place: place, offset: offset + UInt64(n),
                                          fileSize: offset + UInt64(n))
        }
    }
}
