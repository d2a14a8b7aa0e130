import Foundation

/// Parses and fully verifies `state.bin` (it is small: every checksum is checked when a snapshot is opened,
/// so a damaged section is refused before anything is restored).
struct StateFileReader {
    let header: FileHeader
    let sections: [Section]
    let bindings: StateFileWriter.Bindings

    private static let file = SnapshotFormat.stateFileName

    init(bytes: UnsafeRawBufferPointer) throws {
        let size = UInt64(bytes.count)
        header = try FileHeader.decode(UnsafeRawBufferPointer(rebasing: bytes.prefix(FileHeader.size)),
                                       fileSize: size, file: Self.file, expecting: SnapshotFormat.stateMagic)
        let trailerSize = SnapshotFormat.stateTrailerSize
        guard bytes.count >= FileHeader.size + trailerSize,
              bytes.le(bytes.count - trailerSize, as: UInt64.self) == SnapshotFormat.stateTrailerMagic else {
            try Self.locateDamage(bytes)
        }
        let trailerStart = bytes.count - trailerSize
        let manifestOffset: UInt64 = bytes.le(trailerStart + 8)
        let manifestLength: UInt64 = bytes.le(trailerStart + 16)
        guard manifestOffset >= UInt64(FileHeader.size), manifestOffset <= UInt64(trailerStart),
              manifestLength == UInt64(trailerStart) - manifestOffset else {
            throw SnapshotError.corrupt(file: Self.file, place: .trailer, problem:
                "manifest at \(hex(manifestOffset)) (\(hex(manifestLength)) bytes) does not end where the trailer starts (\(hex(trailerStart)))")
        }
        let covered = UnsafeRawBufferPointer(rebasing: bytes[Int(manifestOffset)..<trailerStart + 24])
        guard XXH64.hash(covered) == bytes.le(trailerStart + 24, as: UInt64.self) else {
            throw SnapshotError.checksumMismatch(file: Self.file, place: .manifest)
        }
        let manifest = try Manifest(UnsafeRawBufferPointer(rebasing: bytes[Int(manifestOffset)..<trailerStart]))
        bindings = manifest.bindings

        var sections: [Section] = []
        var seen = Set<String>()
        var expected = UInt64(FileHeader.size)
        for (index, entry) in manifest.entries.enumerated() {
            let place = SnapshotPlace.sectionEntry(index: index, id: entry.id)
            guard entry.offset == expected else {
                throw SnapshotError.corrupt(file: Self.file, place: place,
                                            problem: "starts at \(hex(entry.offset)), expected \(hex(expected))")
            }
            let record = try SectionRecord(bytes, at: Int(entry.offset), limit: Int(manifestOffset), place: place,
                                           truncationIsDamage: true)
            guard record.info.id == entry.id else {
                throw SnapshotError.corrupt(file: Self.file, place: place,
                                            problem: "record has id '\(record.info.id)', the manifest says '\(entry.id)'")
            }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[record.payloadRange])
            guard XXH64.hash(payload) == record.info.checksum else {
                throw SnapshotError.checksumMismatch(file: Self.file, place: record.info.place)
            }
            guard seen.insert(record.info.id).inserted else {
                throw SnapshotError.corrupt(file: Self.file, place: record.info.place, problem: "duplicate section id")
            }
            sections.append(Section(info: record.info, payload: Data(payload)))
            expected = UInt64(record.payloadRange.upperBound)
        }
        guard expected == manifestOffset else {
            throw SnapshotError.corrupt(file: Self.file, place: .manifest, problem:
                "\(manifestOffset - expected) unexplained bytes between the last section (ends \(hex(expected))) and the manifest")
        }
        self.sections = sections
    }

    /// The trailer is missing or damaged: walk the file from the start to say where it ends or breaks,
    /// so that a truncated file is reported as such, naming the section it ends in.
    private static func locateDamage(_ bytes: UnsafeRawBufferPointer) throws -> Never {
        let size = UInt64(bytes.count)
        var offset = FileHeader.size
        var index = 0
        while true {
            guard offset + 4 <= bytes.count else {
                throw SnapshotError.truncated(file: file, place: index == 0 ? .sectionEntry(index: 0, id: nil) : .manifest,
                                              offset: UInt64(offset), fileSize: size)
            }
            let magic: UInt32 = bytes.le(offset)
            if magic == SnapshotFormat.sectionMagic {
                let record = try SectionRecord(bytes, at: offset, limit: bytes.count,
                                               place: .sectionEntry(index: index, id: nil), truncationIsDamage: false)
                offset = record.payloadRange.upperBound
                index += 1
            } else if magic == SnapshotFormat.manifestMagic {
                let available = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                guard let length = Manifest.encodedLength(available) else {
                    throw SnapshotError.truncated(file: file, place: .manifest, offset: UInt64(offset), fileSize: size)
                }
                let trailer = offset + length
                if trailer + SnapshotFormat.stateTrailerSize > bytes.count {
                    throw SnapshotError.truncated(file: file, place: .trailer, offset: UInt64(trailer), fileSize: size)
                }
                throw SnapshotError.corrupt(file: file, place: .trailer, problem: "bad trailer magic or extra bytes at the end")
            } else {
                throw SnapshotError.corrupt(file: file, place: .sectionEntry(index: index, id: nil),
                                            problem: "no section or manifest at offset \(hex(offset)) (bad record magic)")
            }
        }
    }
}

/// One section record's header (FORMAT.md "Section record"), checked but without its payload checksum.
private struct SectionRecord {
    let info: SectionInfo
    let payloadRange: Range<Int>

    private static let file = SnapshotFormat.stateFileName

    /// `limit` is where the record must end (the manifest, or the end of file while locating a truncation).
    init(_ bytes: UnsafeRawBufferPointer, at offset: Int, limit: Int, place: SnapshotPlace,
         truncationIsDamage: Bool) throws {
        func beyond(_ what: String, place: SnapshotPlace) -> SnapshotError {
            truncationIsDamage
                ? .corrupt(file: Self.file, place: place, problem: "\(what) extends past \(hex(limit))")
                : .truncated(file: Self.file, place: place, offset: UInt64(offset), fileSize: UInt64(bytes.count))
        }
        let headerSize = SnapshotFormat.sectionHeaderSize
        guard offset + headerSize <= limit else { throw beyond("section header", place: place) }
        guard bytes.le(offset, as: UInt32.self) == SnapshotFormat.sectionMagic else {
            throw SnapshotError.corrupt(file: Self.file, place: place, problem: "bad record magic at \(hex(offset))")
        }
        let idLength = Int(bytes.le(offset + 4, as: UInt16.self))
        let typeLength = Int(bytes.le(offset + 6, as: UInt16.self))
        let namesEnd = offset + headerSize + idLength + typeLength
        guard namesEnd <= limit else { throw beyond("section header", place: place) }
        var header = Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<namesEnd]))
        let storedChecksum: UInt32 = bytes.le(offset + 12)
        header[12] = 0; header[13] = 0; header[14] = 0; header[15] = 0
        guard UInt32(truncatingIfNeeded: XXH64.hash(header)) == storedChecksum else {
            throw SnapshotError.checksumMismatch(file: Self.file, place: place)
        }
        let idBytes = bytes[(offset + headerSize)..<(offset + headerSize + idLength)]
        let typeBytes = bytes[(offset + headerSize + idLength)..<namesEnd]
        guard idLength > 0, typeLength > 0, let id = String(validating: idBytes, as: UTF8.self),
              let type = String(validating: typeBytes, as: UTF8.self) else {
            throw SnapshotError.corrupt(file: Self.file, place: place, problem: "invalid section id or type")
        }
        let version: UInt32 = bytes.le(offset + 8)
        let payloadLength: UInt64 = bytes.le(offset + 16)
        let info = SectionInfo(id: id, type: type, version: version, size: Int(clamping: payloadLength),
                               checksum: bytes.le(offset + 24), fileOffset: UInt64(offset))
        guard payloadLength <= UInt64(limit - namesEnd) else { throw beyond("payload", place: info.place) }
        self.info = info
        payloadRange = namesEnd..<(namesEnd + Int(payloadLength))
    }
}

/// The manifest (FORMAT.md "Manifest"): the section list and the bindings to config.json and memory.bin.
private struct Manifest {
    struct Entry {
        let offset: UInt64
        let id: String
    }

    let bindings: StateFileWriter.Bindings
    let entries: [Entry]

    private static let file = SnapshotFormat.stateFileName

    init(_ bytes: UnsafeRawBufferPointer) throws {
        func damaged(_ problem: String) -> SnapshotError { .corrupt(file: Self.file, place: .manifest, problem: problem) }
        var r = ByteReader(bytes)
        guard r.u32() == SnapshotFormat.manifestMagic else { throw damaged("bad manifest magic") }
        guard let count = r.u32(), count <= SnapshotFormat.maxSections,
              let configLength = r.u64(), let configChecksum = r.u64(),
              let memoryLength = r.u64(), let memoryChecksum = r.u64(), let created = r.u64() else {
            throw damaged("manifest header too short or section count out of range")
        }
        bindings = .init(configLength: configLength, configChecksum: configChecksum, memoryLength: memoryLength,
                         memoryTrailerChecksum: memoryChecksum, createdUnixTime: created)
        var entries: [Entry] = []
        for index in 0..<Int(count) {
            guard let offset = r.u64(), let length = r.u16(), let idBytes = r.raw(Int(length)),
                  let id = String(validating: idBytes, as: UTF8.self) else {
                throw damaged("entry \(index) of \(count) is malformed")
            }
            entries.append(Entry(offset: offset, id: id))
        }
        guard r.remaining == 0 else { throw damaged("\(r.remaining) extra bytes after \(count) entries") }
        self.entries = entries
    }

    /// The length of a manifest starting at `bytes`, or nil if the bytes end before it does.
    static func encodedLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var r = ByteReader(bytes)
        guard r.u32() != nil, let count = r.u32(), r.skip(SnapshotFormat.manifestHeaderSize - 8) else { return nil }
        for _ in 0..<count {
            guard r.u64() != nil, let length = r.u16(), r.skip(Int(length)) else { return nil }
        }
        return r.position
    }
}
