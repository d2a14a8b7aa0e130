/// Builds `state.bin`: header, one record per section, the manifest that lists them and binds the other two
/// files, and the trailer whose absence reveals a truncated file (FORMAT.md "state.bin").
struct StateFileWriter {
    struct PendingSection {
        let id: String
        let type: String
        let version: UInt32
        let payload: [UInt8]
    }

    /// What the manifest records about the other files of the snapshot.
    struct Bindings {
        var configLength: UInt64
        var configChecksum: UInt64
        var memoryLength: UInt64
        var memoryTrailerChecksum: UInt64
        var createdUnixTime: UInt64
    }

    static func encode(snapshotID: UInt64, sections: [PendingSection], bindings: Bindings) -> [UInt8] {
        var file = ByteWriter(capacity: 4096)
        file.raw(FileHeader(magic: SnapshotFormat.stateMagic, snapshotID: snapshotID).encode())
        var offsets: [UInt64] = []
        for section in sections {
            offsets.append(UInt64(file.count))
            file.raw(sectionRecord(section))
        }
        let manifestOffset = UInt64(file.count)
        var manifest = ByteWriter(capacity: 64 + sections.count * 24)
        manifest.u32(SnapshotFormat.manifestMagic)
        manifest.u32(UInt32(sections.count))
        manifest.u64(bindings.configLength)
        manifest.u64(bindings.configChecksum)
        manifest.u64(bindings.memoryLength)
        manifest.u64(bindings.memoryTrailerChecksum)
        manifest.u64(bindings.createdUnixTime)
        for (section, offset) in zip(sections, offsets) {
            manifest.u64(offset)
            manifest.u16(UInt16(section.id.utf8.count))
            manifest.raw(Array(section.id.utf8))
        }
        file.raw(manifest.bytes)
        var trailer = ByteWriter(capacity: SnapshotFormat.stateTrailerSize)
        trailer.u64(SnapshotFormat.stateTrailerMagic)
        trailer.u64(manifestOffset)
        trailer.u64(UInt64(manifest.count))
        trailer.u64(XXH64.hash(manifest.bytes + trailer.bytes))
        file.raw(trailer.bytes)
        return file.bytes
    }

    static func sectionRecord(_ section: PendingSection) -> [UInt8] {
        let id = Array(section.id.utf8), type = Array(section.type.utf8)
        var w = ByteWriter(capacity: SnapshotFormat.sectionHeaderSize + id.count + type.count + section.payload.count)
        w.u32(SnapshotFormat.sectionMagic)
        w.u16(UInt16(id.count))
        w.u16(UInt16(type.count))
        w.u32(section.version)
        w.u32(0)                                            // header checksum, patched below
        w.u64(UInt64(section.payload.count))
        w.u64(XXH64.hash(section.payload))
        w.raw(id)
        w.raw(type)
        w.patch(UInt32(truncatingIfNeeded: XXH64.hash(w.bytes)), at: 12)
        w.raw(section.payload)
        return w.bytes
    }
}
