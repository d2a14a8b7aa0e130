/// The 32-byte header that starts `state.bin` and `memory.bin`: magic, format version, and the snapshot id
/// that ties the two files together (FORMAT.md "File header").
struct FileHeader {
    static let size = SnapshotFormat.fileHeaderSize

    let magic: UInt64
    let snapshotID: UInt64
    /// The version the file was written with (≤ `SnapshotFormat.version`).
    var version: UInt32 = SnapshotFormat.version

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.u64(magic)
        w.u32(SnapshotFormat.version)
        w.u32(UInt32(Self.size))
        w.u64(snapshotID)
        w.u32(0)                                    // flags: none defined in version 1
        w.u32(UInt32(truncatingIfNeeded: XXH64.hash(w.bytes)))
        return w.bytes
    }

    /// Checks the start of a file in the order that gives the most useful message: foreign or empty
    /// file first, then a version this build cannot read, then damage.
    static func decode(_ bytes: UnsafeRawBufferPointer, fileSize: UInt64, file: String,
                       expecting magic: UInt64) throws -> FileHeader {
        if fileSize == 0 { throw SnapshotError.notSnapshotFile(file: file, found: "file is empty") }
        let magicBytes = withUnsafeBytes(of: magic.littleEndian) { Array($0) }
        if bytes.count < 8 {
            if Array(bytes) == Array(magicBytes.prefix(bytes.count)) {
                throw SnapshotError.truncated(file: file, place: .header, offset: UInt64(bytes.count), fileSize: fileSize)
            }
            throw SnapshotError.notSnapshotFile(file: file, found: describeForeignBytes(bytes, fileSize: fileSize))
        }
        let found: UInt64 = bytes.le(0)
        if found != magic {
            throw SnapshotError.notSnapshotFile(file: file, found: describeMagic(found, bytes: bytes, fileSize: fileSize))
        }
        guard bytes.count >= 12 else {
            throw SnapshotError.truncated(file: file, place: .header, offset: UInt64(bytes.count), fileSize: fileSize)
        }
        let version: UInt32 = bytes.le(8)
        if version > SnapshotFormat.version {
            throw SnapshotError.newerVersion(file: file, version: version, supported: SnapshotFormat.version)
        }
        if version < 1 { throw SnapshotError.unsupportedVersion(file: file, version: version) }
        guard bytes.count >= size else {
            throw SnapshotError.truncated(file: file, place: .header, offset: UInt64(bytes.count), fileSize: fileSize)
        }
        let checksum: UInt32 = bytes.le(28)
        let computed = UInt32(truncatingIfNeeded: XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<28])))
        guard checksum == computed else { throw SnapshotError.checksumMismatch(file: file, place: .header) }
        let headerSize: UInt32 = bytes.le(12)
        guard headerSize == UInt32(size) else {
            throw SnapshotError.corrupt(file: file, place: .header, problem: "header size \(headerSize), expected \(size)")
        }
        let flags: UInt32 = bytes.le(24)
        guard flags == 0 else {
            throw SnapshotError.corrupt(file: file, place: .header, problem: "unknown flags \(hex(flags))")
        }
        return FileHeader(magic: magic, snapshotID: bytes.le(16), version: version)
    }

    private static func describeMagic(_ found: UInt64, bytes: UnsafeRawBufferPointer, fileSize: UInt64) -> String {
        switch found {
        case SnapshotFormat.stateMagic: return "it is a snapshot state file (\(SnapshotFormat.stateFileName))"
        case SnapshotFormat.memoryMagic: return "it is a snapshot memory file (\(SnapshotFormat.memoryFileName))"
        default: return describeForeignBytes(bytes, fileSize: fileSize)
        }
    }
}
