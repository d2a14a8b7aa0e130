import Foundation

/// Opens `memory.bin`: checks header, range table, trailer and chunk index when the snapshot is opened (cheap,
/// and it catches truncation before anything is restored); chunks themselves are read and verified when
/// restored or verified.
final class MemoryFileReader: @unchecked Sendable {
    let io: SnapshotFileIO
    let header: FileHeader
    let table: RangeTable
    let trailer: MemoryTrailer
    let chunks: [ChunkLocation]
    let fileSize: UInt64
    /// How chunk records are laid out in this file's format version.
    let layout: ChunkRecordLayout

    private static let file = SnapshotFormat.memoryFileName

    init(io: SnapshotFileIO) throws {
        self.io = io
        let size = try io.size()
        fileSize = size
        let head = try io.read(count: FileHeader.size, at: 0)
        header = try head.withUnsafeBytes {
            try FileHeader.decode($0, fileSize: size, file: Self.file, expecting: SnapshotFormat.memoryMagic)
        }
        let layout = ChunkRecordLayout.forVersion(header.version)
        self.layout = layout
        let table = try RangeTable.read(from: io, fileSize: size)
        self.table = table
        let plan = ChunkPlan(ranges: table.ranges, chunkSize: table.chunkSize)
        let firstChunk = UInt64(FileHeader.size + RangeTable.encodedLength(rangeCount: table.ranges.count))

        let trailerSize = UInt64(MemoryTrailer.size)
        let indexLength = UInt64(MemoryTrailer.indexLength(chunkCount: plan.count))
        let tail = size >= firstChunk + indexLength + trailerSize
            ? try io.read(count: MemoryTrailer.size, at: size - trailerSize) : []
        guard tail.count == MemoryTrailer.size,
              tail.withUnsafeBytes({ $0.le(0, as: UInt64.self) }) == SnapshotFormat.memoryTrailerMagic else {
            throw try Self.locateDamage(io: io, layout: layout, plan: plan, chunkSize: table.chunkSize, firstChunk: firstChunk,
                                        fileSize: size)
        }
        let indexOffset = size - trailerSize - indexLength
        var covered = try io.read(count: Int(indexLength + trailerSize), at: indexOffset)
        let trailer = try covered.withUnsafeBytes { raw -> MemoryTrailer in
            let t = Int(indexLength)
            let stored: UInt64 = raw.le(t + 56)
            guard XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[0..<(t + 56)])) == stored else {
                throw SnapshotError.checksumMismatch(file: Self.file, place: .trailer)
            }
            return MemoryTrailer(indexOffset: raw.le(t + 8), chunkCount: raw.le(t + 16), totalBytes: raw.le(t + 24),
                                 zeroPages: raw.le(t + 32), storedBytes: raw.le(t + 40), rawBytes: raw.le(t + 48),
                                 checksum: stored)
        }
        func damaged(_ place: SnapshotPlace, _ problem: String) -> SnapshotError {
            .corrupt(file: Self.file, place: place, problem: problem)
        }
        guard trailer.chunkCount == UInt64(plan.count), trailer.indexOffset == indexOffset,
              trailer.totalBytes == table.ranges.reduce(0, { $0 + $1.size }) else {
            throw damaged(.trailer, "trailer (\(trailer.chunkCount) chunks, index at \(hex(trailer.indexOffset))) does not match the range table (\(plan.count) chunks, index at \(hex(indexOffset)))")
        }
        guard trailer.rawBytes <= trailer.storedBytes, header.version >= 2 || trailer.rawBytes == 0 else {
            throw damaged(.trailer, "\(trailer.rawBytes) raw bytes do not fit the \(trailer.storedBytes) stored bytes")
        }
        self.trailer = trailer
        covered.removeLast(MemoryTrailer.size)
        chunks = try covered.withUnsafeBytes { raw in
            guard raw.le(0, as: UInt32.self) == SnapshotFormat.indexMagic,
                  raw.le(8, as: UInt64.self) == UInt64(plan.count) else {
                throw damaged(.index, "bad index header")
            }
            let maxRecord = layout.maxRecordLength(chunkSize: table.chunkSize)
            var result: [ChunkLocation] = []
            result.reserveCapacity(plan.count)
            var expected = firstChunk
            for i in 0..<plan.count {
                let entry = plan[i]
                let start: UInt64 = raw.le(SnapshotFormat.indexHeaderSize + 8 * i)
                let end: UInt64 = i + 1 < plan.count ? raw.le(SnapshotFormat.indexHeaderSize + 8 * (i + 1)) : indexOffset
                let place = SnapshotPlace.chunk(index: i, range: entry.range, offset: entry.offset)
                guard start == expected, end > start, end - start >= UInt64(layout.headerSize),
                      end - start <= UInt64(maxRecord) else {
                    throw damaged(place, "index entry \(hex(start))…\(hex(end)) is impossible (expected start \(hex(expected)))")
                }
                result.append(ChunkLocation(index: i, range: entry.range, offsetInRange: entry.offset,
                                            length: entry.length, fileOffset: start, recordLength: Int(end - start)))
                expected = end
            }
            return result
        }
    }

    /// The trailer is missing or damaged: walk the chunk headers from the start to say where the file ends
    /// or breaks ("truncated in chunk 17 at offset …").
    private static func locateDamage(io: SnapshotFileIO, layout: ChunkRecordLayout, plan: ChunkPlan, chunkSize: Int,
                                     firstChunk: UInt64, fileSize: UInt64) throws -> SnapshotError {
        var offset = firstChunk
        let L = ChunkRecordLayout.self
        for i in 0..<plan.count {
            let entry = plan[i]
            let place = SnapshotPlace.chunk(index: i, range: entry.range, offset: entry.offset)
            let head = try io.read(count: layout.headerSize, at: offset)
            guard head.count == layout.headerSize else {
                return SnapshotError.truncated(file: file, place: place, offset: offset, fileSize: fileSize)
            }
            let (magic, length, runs, compressed, raw) = head.withUnsafeBytes { h in
                (h.le(L.magicOffset, as: UInt32.self), Int(h.le(L.lengthOffset, as: UInt32.self)),
                 Int(h.le(L.runCountOffset, as: UInt32.self)), Int(h.le(layout.compressedOffset, as: UInt32.self)),
                 layout.rawOffset.map { Int(h.le($0, as: UInt32.self)) } ?? 0)
            }
            guard magic == SnapshotFormat.chunkMagic else {
                return SnapshotError.corrupt(file: file, place: place, problem: "bad chunk magic at \(hex(offset))")
            }
            let recordLength = layout.recordLength(at: offset, head: layout.headLength(length: length, runCount: runs,
                                                                                    compressed: compressed), raw: raw)
            guard length == entry.length, recordLength <= layout.maxRecordLength(chunkSize: chunkSize) else {
                return SnapshotError.corrupt(file: file, place: place,
                                             problem: "chunk header damaged (length \(length), \(runs) runs, \(compressed + raw) bytes)")
            }
            guard offset + UInt64(recordLength) <= fileSize else {
                return SnapshotError.truncated(file: file, place: place, offset: offset, fileSize: fileSize)
            }
            offset += UInt64(recordLength)
        }
        let indexEnd = offset + UInt64(MemoryTrailer.indexLength(chunkCount: plan.count))
        guard indexEnd <= fileSize else {
            return SnapshotError.truncated(file: file, place: .index, offset: offset, fileSize: fileSize)
        }
        guard indexEnd + UInt64(MemoryTrailer.size) <= fileSize else {
            return SnapshotError.truncated(file: file, place: .trailer, offset: indexEnd, fileSize: fileSize)
        }
        return SnapshotError.corrupt(file: file, place: .trailer, problem: "bad trailer magic or extra bytes at the end")
    }
}
