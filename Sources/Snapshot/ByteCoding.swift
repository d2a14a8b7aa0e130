/// Little-endian encoding into a growing byte array: how headers, manifests and tables are built.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    var count: Int { bytes.count }

    mutating func u16(_ v: UInt16) { append(v) }
    mutating func u32(_ v: UInt32) { append(v) }
    mutating func u64(_ v: UInt64) { append(v) }
    mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Overwrites an already written little-endian field (used for checksums computed last).
    mutating func patch<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { src in
            for i in 0..<src.count { bytes[offset + i] = src[i] }
        }
    }
}

/// Bounds-checked little-endian decoding of bytes read from a file. Reading past the end returns nil:
/// the caller knows which section or chunk it is reading and turns that into a precise error.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int

    init(_ bytes: UnsafeRawBufferPointer, at position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }

    mutating func u16() -> UInt16? { read() }
    mutating func u32() -> UInt32? { read() }
    mutating func u64() -> UInt64? { read() }

    mutating func raw(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, count <= remaining else { return nil }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, count <= remaining else { return false }
        position += count
        return true
    }

    private mutating func read<T: FixedWidthInteger>() -> T? {
        guard MemoryLayout<T>.size <= remaining else { return nil }
        defer { position += MemoryLayout<T>.size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }
}

extension UnsafeRawBufferPointer {
    /// A little-endian integer at `offset` (the caller has checked the bounds).
    func le<T: FixedWidthInteger>(_ offset: Int, as type: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    func storeLE<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        storeBytes(of: v.littleEndian, toByteOffset: offset, as: T.self)
    }
}

/// A short printable rendering of a file's first bytes, for "not a snapshot file" messages.
func describeForeignBytes(_ bytes: UnsafeRawBufferPointer, fileSize: UInt64) -> String {
    if fileSize == 0 { return "file is empty" }
    let head = bytes.prefix(16)
    let hexText = head.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        .joined(separator: " ")
    let printable = head.allSatisfy { $0 == 9 || $0 == 10 || $0 == 13 || (0x20..<0x7f).contains($0) }
    let text = printable ? " \"" + String(decoding: head, as: UTF8.self)
        .replacingNewlines() + "\"" : ""
    return "\(fileSize) bytes starting with \(hexText)\(text)"
}

private extension String {
    func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : $0 })
    }
}
