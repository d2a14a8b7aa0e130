/// A little-endian byte image of a guest structure, built in host memory and then written in one go.
///
/// Guest structures (zero page, start_info, ACPI tables) are fixed layouts addressed by offset in their
/// specifications; writing by offset keeps the code next to those offsets readable.
struct Bytes: Sendable, Equatable {
    var storage: [UInt8]

    init(count: Int) { storage = [UInt8](repeating: 0, count: count) }
    init(_ bytes: [UInt8]) { storage = bytes }

    var count: Int { storage.count }

    subscript(offset: Int) -> UInt8 {
        get { storage[offset] }
        set { storage[offset] = newValue }
    }

    /// Stores `value` little-endian at `offset`, growing the image if needed.
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        if offset + size > storage.count { storage += [UInt8](repeating: 0, count: offset + size - storage.count) }
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { raw in
            for i in 0..<size { storage[offset + i] = raw[i] }
        }
    }

    mutating func put(_ bytes: [UInt8], at offset: Int) {
        if offset + bytes.count > storage.count {
            storage += [UInt8](repeating: 0, count: offset + bytes.count - storage.count)
        }
        storage.replaceSubrange(offset..<offset + bytes.count, with: bytes)
    }

    /// Stores ASCII text padded with `pad` (or cut) to exactly `width` bytes.
    mutating func put(ascii text: String, width: Int, pad: UInt8 = 0x20, at offset: Int) {
        var field = Array(text.utf8.prefix(width))
        field += [UInt8](repeating: pad, count: width - field.count)
        put(field, at: offset)
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) { put(value, at: storage.count) }
    mutating func append(_ bytes: [UInt8]) { storage += bytes }

    func get<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        Self.read(T.self, from: storage, at: offset)
    }

    /// Reads a little-endian integer from a byte array (bounds are the caller's job).
    static func read<T: FixedWidthInteger>(_ type: T.Type, from bytes: [UInt8], at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
        return value
    }
}

extension UInt64 {
    /// `self` rounded up to a multiple of `alignment` (a power of two).
    func alignedUp(to alignment: UInt64) -> UInt64 { (self + alignment - 1) & ~(alignment - 1) }
    /// `self` rounded down to a multiple of `alignment` (a power of two).
    func alignedDown(to alignment: UInt64) -> UInt64 { self & ~(alignment - 1) }
}

/// `0x1f` style hex for messages.
func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

/// A size in the unit a user thinks in, for messages.
func humanSize(_ bytes: UInt64) -> String {
    if bytes >= 1 << 30, bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
    if bytes >= 1 << 20 { return "\((bytes + (1 << 19)) >> 20) MiB" }
    if bytes >= 1 << 10 { return "\((bytes + (1 << 9)) >> 10) KiB" }
    return "\(bytes) bytes"
}
