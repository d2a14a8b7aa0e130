#if canImport(Glibc)
import Glibc
#endif

/// Reads one chunk record, verifies it completely (checksum, position, structure) and only then writes it
/// into guest memory: a damaged chunk never reaches the guest. One per restore thread.
final class ChunkDecoder {
    struct Result {
        var zeroPages: Int
        var dataBytes: Int
    }

    private typealias L = ChunkRecordLayout
    private static let file = SnapshotFormat.memoryFileName
    private let decompressor: ZstdDecompressor
    private let record: UnsafeMutableRawBufferPointer
    private var scratch: UnsafeMutableRawBufferPointer?
    private let chunkSize: Int

    init(chunkSize: Int) throws {
        decompressor = try ZstdDecompressor()
        self.chunkSize = chunkSize
        record = .allocate(byteCount: L.maxRecordLength(chunkSize: chunkSize), alignment: 64)
    }

    deinit {
        record.deallocate()
        scratch?.deallocate()
    }

    /// Restores chunk `chunk` to `destination` (the chunk's first guest byte). Zero pages are left alone
    /// unless `zeroFill` (the caller's memory is not known to be zero).
    func restore(_ chunk: ChunkLocation, from file: SnapshotFileIO, into destination: UnsafeMutableRawPointer,
                 zeroFill: Bool) throws -> Result {
        let bytes = try load(chunk, from: file)
        return try expand(bytes, chunk: chunk, into: destination, zeroFill: zeroFill)
    }

    /// Checks chunk `chunk` without a destination: checksum, structure, and that every frame decodes.
    func verify(_ chunk: ChunkLocation, from file: SnapshotFileIO) throws -> Result {
        let bytes = try load(chunk, from: file)
        if scratch == nil { scratch = .allocate(byteCount: chunkSize, alignment: 64) }
        return try expand(bytes, chunk: chunk, into: scratch!.baseAddress!, zeroFill: false)
    }

    private func load(_ chunk: ChunkLocation, from file: SnapshotFileIO) throws -> UnsafeMutableRawBufferPointer {
        let place = chunk.place
        func damaged(_ problem: String) -> SnapshotError { .corrupt(file: Self.file, place: place, problem: problem) }
        guard chunk.recordLength >= L.headerSize, chunk.recordLength <= record.count else {
            throw damaged("record length \(chunk.recordLength) is impossible for chunk size \(chunkSize)")
        }
        let bytes = UnsafeMutableRawBufferPointer(rebasing: record[0..<chunk.recordLength])
        let n = try file.read(into: bytes, at: chunk.fileOffset)
        guard n == bytes.count else {
            throw SnapshotError.truncated(file: Self.file, place: place, offset: chunk.fileOffset,
                                          fileSize: chunk.fileOffset + UInt64(n))
        }
        let view = UnsafeRawBufferPointer(bytes)
        guard view.le(L.magicOffset, as: UInt32.self) == SnapshotFormat.chunkMagic else {
            throw damaged("bad chunk magic at \(hex(chunk.fileOffset))")
        }
        guard L.checksum(bytes) == view.le(L.checksumOffset, as: UInt64.self) else {
            throw SnapshotError.checksumMismatch(file: Self.file, place: place)
        }
        // The checksum matched: what follows can only fail for a record written by a broken writer.
        let range: UInt32 = view.le(L.rangeOffset), offset: UInt64 = view.le(L.offsetInRangeOffset)
        let length = Int(view.le(L.lengthOffset, as: UInt32.self))
        guard range == chunk.range, offset == chunk.offsetInRange, length == chunk.length else {
            throw damaged("record is for range \(range) +\(hex(offset)) (\(length) bytes)")
        }
        let runCount = Int(view.le(L.runCountOffset, as: UInt32.self))
        let stored = Int(view.le(L.storedOffset, as: UInt32.self))
        guard view.le(L.flagsOffset, as: UInt32.self) == 0 else { throw damaged("unknown chunk flags") }
        guard L.recordLength(length: length, runCount: runCount, stored: stored) == bytes.count else {
            throw damaged("record length \(bytes.count) does not match its \(runCount) runs and \(stored) stored bytes")
        }
        let pages = L.pages(length: length)
        let bitmap = view.baseAddress! + L.headerSize
        if pages % 8 != 0, bitmap.load(fromByteOffset: pages / 8, as: UInt8.self) >> UInt8(pages % 8) != 0 {
            throw damaged("zero-page bitmap marks pages past the chunk end")
        }
        var runs = 0, total = 0
        let runTable = L.headerSize + L.bitmapLength(length: length)
        var runProblem: String?
        L.forEachRun(bitmap: bitmap, pages: pages) { first, count in
            guard runs < runCount else { runs += 1; return }
            let size = Int(view.le(runTable + 4 * runs, as: UInt32.self))
            if size > L.runBytes(firstPage: first, pageCount: count, chunkLength: length) || size == 0 {
                runProblem = runProblem ?? "run \(runs) at page \(first) has impossible stored size \(size)"
            }
            total += size
            runs += 1
        }
        if let runProblem { throw damaged(runProblem) }
        guard runs == runCount, total == stored else {
            throw damaged("bitmap has \(runs) runs, header says \(runCount); runs hold \(total) bytes, header says \(stored)")
        }
        return bytes
    }

    private func expand(_ bytes: UnsafeMutableRawBufferPointer, chunk: ChunkLocation,
                        into destination: UnsafeMutableRawPointer, zeroFill: Bool) throws -> Result {
        let view = UnsafeRawBufferPointer(bytes)
        let length = chunk.length, pages = L.pages(length: length)
        let bitmap = view.baseAddress! + L.headerSize
        let runTable = L.headerSize + L.bitmapLength(length: length)
        let runCount = Int(view.le(L.runCountOffset, as: UInt32.self))
        var position = runTable + 4 * runCount
        var run = 0, dataBytes = 0, problem: String?
        L.forEachRun(bitmap: bitmap, pages: pages) { first, count in
            guard problem == nil else { return }
            let runBytes = L.runBytes(firstPage: first, pageCount: count, chunkLength: length)
            let size = Int(view.le(runTable + 4 * run, as: UInt32.self))
            let dst = destination + first * L.pageSize
            if size == runBytes {
                dst.copyMemory(from: view.baseAddress! + position, byteCount: size)
            } else if let error = decompressor.decompress(view.baseAddress! + position, count: size,
                                                         into: dst, count: runBytes) {
                problem = "run \(run) at page \(first): \(error)"
            }
            position += size
            dataBytes += runBytes
            run += 1
        }
        if let problem { throw SnapshotError.corrupt(file: Self.file, place: chunk.place, problem: problem) }
        var zeroPages = 0
        for page in 0..<pages where L.isZero(bitmap, page) {
            zeroPages += 1
            if zeroFill {
                memset(destination + page * L.pageSize, 0, min(L.pageSize, length - page * L.pageSize))
            }
        }
        return Result(zeroPages: zeroPages, dataBytes: dataBytes)
    }
}
