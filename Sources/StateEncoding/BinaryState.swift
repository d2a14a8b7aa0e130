import Foundation

/// A compact, self-describing binary form of `Codable` values, for component state payloads (vCPU, VM,
/// devices) that are written and read while a migrating VM is paused: Foundation's JSON took 0.5–1 ms per
/// vCPU or virtio transport there. Layout (all integers little-endian; snapshots/FORMAT.md, "State payloads"):
///
/// - payload: `marker` (0xB1, which no JSON text begins with), then exactly one value;
/// - value: a tag byte (`BinaryStateTag`), then its body;
/// - keyed container (a struct): `u32` body length, `u32` entry count, then per entry a `u8` key length
///   (1…255), the key in UTF-8 and the value. Keys travel with their values, so a reader ignores entries it
///   does not know and a field added later (optional, or with a default) still decodes older payloads;
/// - `Data` and `[UInt8]` are one length-prefixed blob; arrays of fixed-width integers are one typed block
///   (element tag, count, the elements back to back) instead of one tagged value per element.
public enum BinaryState {
    /// The first byte of a binary payload.
    public static let marker: UInt8 = 0xB1

    /// Whether `payload` is in this encoding (as opposed to legacy JSON, which begins with `{` or `[`).
    public static func isBinary(_ payload: Data) -> Bool { payload.first == marker }

    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let writer = BinaryStateWriter()
        writer.bytes.append(marker)
        try writer.encodeValue(value, codingPath: [])
        return try Data(writer.finish())
    }

    /// Refuses anything but one well-formed value after the marker: every length is checked against what is
    /// left, and errors are `DecodingError`s whose message gives the byte offset.
    public static func decode<T: Decodable>(_ type: T.Type, from payload: Data) throws -> T {
        try payload.withUnsafeBytes { buffer in
            let input = BinaryStateInput(bytes: buffer)
            guard buffer.first == marker else {
                throw input.corrupted("does not begin with the binary state marker 0xB1", at: 0, codingPath: [])
            }
            let root = try input.value(at: 1, limit: buffer.count, codingPath: [])
            guard root.end == buffer.count else {
                throw input.corrupted("\(buffer.count - root.end) bytes follow the value", at: root.end, codingPath: [])
            }
            return try input.decodeValue(type, root, codingPath: [])
        }
    }
}

/// The tag byte that starts every value.
enum BinaryStateTag: UInt8 {
    case null = 0x00, no = 0x01, yes = 0x02
    /// Integers, as many bytes as their width: u8 … u64, then i8 … i64.
    case u8 = 0x03, u16 = 0x04, u32 = 0x05, u64 = 0x06, i8 = 0x07, i16 = 0x08, i32 = 0x09, i64 = 0x0A
    case f32 = 0x0B, f64 = 0x0C
    /// `u32` length, UTF-8.
    case string = 0x0D
    /// `u32` length, bytes (`Data`, `[UInt8]`).
    case bytes = 0x0E
    /// Element tag (u16 … i64), `u32` count, the elements.
    case integers = 0x0F
    /// `u32` body length, `u32` count, entries (key length, key, value).
    case keyed = 0x10
    /// `u32` body length, `u32` count, values.
    case unkeyed = 0x11

    /// The integer tag of `T` (Int and UInt are 64-bit here).
    @inline(__always)
    static func integer<T: FixedWidthInteger>(_: T.Type) -> BinaryStateTag {
        let log2Width = MemoryLayout<T>.size.trailingZeroBitCount
        return BinaryStateTag(rawValue: (T.isSigned ? i8.rawValue : u8.rawValue) + UInt8(log2Width))!
    }

    /// Byte width of an integer tag, nil for other tags.
    var integerWidth: Int? {
        switch self {
        case .u8, .i8: 1
        case .u16, .i16: 2
        case .u32, .i32: 4
        case .u64, .i64: 8
        default: nil
        }
    }

    var isSigned: Bool { (BinaryStateTag.i8.rawValue...BinaryStateTag.i64.rawValue).contains(rawValue) }
}

/// A coding key for array positions and `super`, in coding paths (its text is only made when asked for:
/// paths are built for every array element but read only in errors).
struct BinaryStateKey: CodingKey {
    private let name: String?
    let intValue: Int?
    var stringValue: String { name ?? "\(intValue!)" }
    init(stringValue: String) { name = stringValue; intValue = nil }
    init(intValue: Int) { name = nil; self.intValue = intValue }
}
