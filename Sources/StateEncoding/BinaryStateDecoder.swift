import Foundation

/// Bounds-checked reading of a binary payload. Every value's extent is known from its header alone (its
/// tag, and a length or count for variable-sized values), so skipping an unknown entry never recurses, and a
/// length that runs past its container is refused before anything is read there.
struct BinaryStateInput {
    let bytes: UnsafeRawBufferPointer

    /// A value in the input: its tag, where its body starts and where it ends.
    struct Value {
        let tag: BinaryStateTag
        let body: Int
        let end: Int
        var offset: Int { body - 1 }
    }

    func corrupted(_ reason: String, at offset: Int, codingPath: [any CodingKey]) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath, debugDescription: "binary state, byte \(offset): \(reason)"))
    }

    private func u32(at offset: Int) -> Int {
        Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    /// Reads the header of the value at `offset`, which must end by `limit` (its container's end).
    func value(at offset: Int, limit: Int, codingPath: [any CodingKey]) throws -> Value {
        guard offset < limit else {
            throw corrupted("truncated: a value is missing (\(limit) is where its container ends)", at: offset, codingPath: codingPath)
        }
        guard let tag = BinaryStateTag(rawValue: bytes[offset]) else {
            throw corrupted("unknown tag 0x\(String(bytes[offset], radix: 16))", at: offset, codingPath: codingPath)
        }
        let body = offset + 1
        func need(_ count: Int) throws {
            guard count <= limit - body else {
                throw corrupted("truncated: \(tag) needs \(count) bytes, \(limit - body) remain", at: offset, codingPath: codingPath)
            }
        }
        var length: Int
        switch tag {
        case .null, .no, .yes: length = 0
        case .f32: length = 4
        case .f64: length = 8
        case .string, .bytes:
            try need(4)
            length = 4 + u32(at: body)
        case .integers:
            try need(5)
            guard let element = BinaryStateTag(rawValue: bytes[body]), let width = element.integerWidth else {
                throw corrupted("integer block of element tag 0x\(String(bytes[body], radix: 16))", at: offset, codingPath: codingPath)
            }
            length = 5 + u32(at: body + 1) * width
        case .keyed, .unkeyed:
            try need(8)
            length = 8 + u32(at: body)
            // The smallest entry is 3 bytes (key length, one key byte, a tag), the smallest value 1.
            guard u32(at: body + 4) * (tag == .keyed ? 3 : 1) <= length - 8 else {
                throw corrupted("\(u32(at: body + 4)) entries cannot fit in \(length - 8) bytes", at: offset, codingPath: codingPath)
            }
        default: length = tag.integerWidth!
        }
        try need(length)
        return Value(tag: tag, body: body, end: body + length)
    }

    /// The entries of a keyed container, checked to fill it exactly.
    func entries(of v: Value, codingPath: [any CodingKey]) throws -> [(key: Range<Int>, value: Value)] {
        let count = u32(at: v.body + 4)
        var out: [(key: Range<Int>, value: Value)] = []
        out.reserveCapacity(count)
        var p = v.body + 8
        for _ in 0..<count {
            let keyLength = p < v.end ? Int(bytes[p]) : 0
            guard keyLength > 0, keyLength < v.end - p else {
                throw corrupted("truncated or empty key", at: p, codingPath: codingPath)
            }
            let key = p + 1..<p + 1 + keyLength
            let value = try value(at: key.upperBound, limit: v.end, codingPath: codingPath)
            out.append((key, value))
            p = value.end
        }
        guard p == v.end else { throw corrupted("\(v.end - p) bytes after the last entry", at: p, codingPath: codingPath) }
        return out
    }

    /// The values of an unkeyed container (positions of their headers), checked to fill it exactly.
    func elements(of v: Value, codingPath: [any CodingKey]) throws -> [Value] {
        let count = u32(at: v.body + 4)
        var out: [Value] = []
        out.reserveCapacity(count)
        var p = v.body + 8
        for _ in 0..<count {
            let element = try value(at: p, limit: v.end, codingPath: codingPath)
            out.append(element)
            p = element.end
        }
        guard p == v.end else { throw corrupted("\(v.end - p) bytes after the last element", at: p, codingPath: codingPath) }
        return out
    }

    // MARK: Scalars

    private func mismatch(_ type: Any.Type, _ v: Value, _ codingPath: [any CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "binary state, byte \(v.offset): expected \(type), found \(v.tag)"))
    }

    func isNil(_ v: Value) -> Bool { v.tag == .null }

    func bool(_ v: Value, codingPath: @autoclosure () -> [any CodingKey]) throws -> Bool {
        switch v.tag {
        case .no: false
        case .yes: true
        default: throw mismatch(Bool.self, v, codingPath())
        }
    }

    /// Any integer tag, converted exactly (a field that grew from UInt16 to UInt32 still reads old payloads).
    /// Inlined so that each concrete `decode(_: UInt32.Type)` gets a specialized copy.
    @inline(__always)
    func integer<T: FixedWidthInteger>(_ v: Value, as type: T.Type, codingPath: @autoclosure () -> [any CodingKey]) throws -> T {
        let converted: T?
        switch v.tag {
        case .u8: converted = T(exactly: bytes[v.body])
        case .u16: converted = T(exactly: load(UInt16.self, v.body))
        case .u32: converted = T(exactly: load(UInt32.self, v.body))
        case .u64: converted = T(exactly: load(UInt64.self, v.body))
        case .i8: converted = T(exactly: Int8(bitPattern: bytes[v.body]))
        case .i16: converted = T(exactly: load(Int16.self, v.body))
        case .i32: converted = T(exactly: load(Int32.self, v.body))
        case .i64: converted = T(exactly: load(Int64.self, v.body))
        default: throw mismatch(type, v, codingPath())
        }
        guard let converted else { throw corrupted("the \(v.tag) value does not fit \(type)", at: v.offset, codingPath: codingPath()) }
        return converted
    }

    @inline(__always)
    private func load<T: FixedWidthInteger>(_: T.Type, _ offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    func double(_ v: Value, codingPath: @autoclosure () -> [any CodingKey]) throws -> Double {
        switch v.tag {
        case .f64: Double(bitPattern: load(UInt64.self, v.body))
        case .f32: Double(Float(bitPattern: load(UInt32.self, v.body)))
        default: throw mismatch(Double.self, v, codingPath())
        }
    }

    func float(_ v: Value, codingPath: @autoclosure () -> [any CodingKey]) throws -> Float {
        guard v.tag == .f32 else { throw mismatch(Float.self, v, codingPath()) }
        return Float(bitPattern: load(UInt32.self, v.body))
    }

    private func content(_ v: Value) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[v.body + 4..<v.end]) }

    func string(_ v: Value, codingPath: @autoclosure () -> [any CodingKey]) throws -> String {
        guard v.tag == .string else { throw mismatch(String.self, v, codingPath()) }
        guard let s = String(validating: content(v), as: UTF8.self) else {
            throw corrupted("the string is not valid UTF-8", at: v.offset, codingPath: codingPath())
        }
        return s
    }

    // MARK: Values

    /// Byte blobs and integer blocks straight into their arrays; anything else through its `init(from:)`.
    func decodeValue<T: Decodable>(_ type: T.Type, _ v: Value, codingPath: @autoclosure () -> [any CodingKey]) throws -> T {
        if v.tag == .bytes {
            if T.self == Data.self { return Data(content(v)) as! T }
            if T.self == [UInt8].self { return [UInt8](content(v)) as! T }
        } else if v.tag == .integers {
            if T.self == [UInt16].self { return try integers(v, UInt16.self, codingPath()) as! T }
            if T.self == [UInt32].self { return try integers(v, UInt32.self, codingPath()) as! T }
            if T.self == [UInt64].self { return try integers(v, UInt64.self, codingPath()) as! T }
            if T.self == [Int].self { return try integers(v, Int.self, codingPath()) as! T }
            if T.self == [Int32].self { return try integers(v, Int32.self, codingPath()) as! T }
            if T.self == [Int64].self { return try integers(v, Int64.self, codingPath()) as! T }
        }
        return try T(from: BinaryStateDecoder(input: self, value: v, codingPath: codingPath()))
    }

    /// The elements of an integer block, as `v`'s header describes them.
    func blockElements(_ v: Value) -> (tag: BinaryStateTag, count: Int, start: Int, width: Int) {
        let tag = BinaryStateTag(rawValue: bytes[v.body])!
        return (tag, u32(at: v.body + 1), v.body + 5, tag.integerWidth!)
    }

    private func integers<T: FixedWidthInteger>(_ v: Value, _: T.Type, _ codingPath: @autoclosure () -> [any CodingKey]) throws -> [T] {
        let block = blockElements(v)
        if block.tag == BinaryStateTag.integer(T.self) {
            return (0..<block.count).map { load(T.self, block.start + $0 * block.width) }
        }
        return try (0..<block.count).map { i in
            let start = block.start + i * block.width
            return try integer(Value(tag: block.tag, body: start, end: start + block.width), as: T.self,
                               codingPath: codingPath() + [BinaryStateKey(intValue: i)])
        }
    }
}

/// The `Decoder` handed to one value's `init(from:)`.
struct BinaryStateDecoder: Decoder {
    let input: BinaryStateInput
    let value: BinaryStateInput.Value
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard value.tag == .keyed else {
            throw DecodingError.typeMismatch([String: Any].self, .init(codingPath: codingPath,
                debugDescription: "binary state, byte \(value.offset): expected a keyed container, found \(value.tag)"))
        }
        return KeyedDecodingContainer(BinaryKeyedDecoding<Key>(
            input: input, entries: try input.entries(of: value, codingPath: codingPath), codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try BinaryUnkeyedDecoding(input: input, value: value, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        BinarySingleValueDecoding(input: input, value: value, codingPath: codingPath)
    }
}

struct BinaryKeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let input: BinaryStateInput
    let entries: [(key: Range<Int>, value: BinaryStateInput.Value)]
    let codingPath: [any CodingKey]

    var allKeys: [Key] {
        entries.compactMap { Key(stringValue: String(decoding: UnsafeRawBufferPointer(rebasing: input.bytes[$0.key]), as: UTF8.self)) }
    }

    /// The entry for `key` (`Key`, or `super`, which `Key` need not have).
    private func find<K: CodingKey>(_ key: K) -> BinaryStateInput.Value? {
        var name = key.stringValue
        return name.withUTF8 { wanted in
            entries.first {
                $0.key.count == wanted.count && memcmp(input.bytes.baseAddress! + $0.key.lowerBound, wanted.baseAddress!, wanted.count) == 0
            }?.value
        }
    }

    private func entry<K: CodingKey>(_ key: K) throws -> BinaryStateInput.Value {
        guard let v = find(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "binary state: no entry \"\(key.stringValue)\""))
        }
        return v
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { input.isNil(try entry(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try input.bool(try entry(key), codingPath: codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try input.string(try entry(key), codingPath: codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try input.double(try entry(key), codingPath: codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try input.float(try entry(key), codingPath: codingPath + [key]) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try input.decodeValue(type, try entry(key), codingPath: codingPath + [key])
    }

    @inline(__always)
    private func integer<T: FixedWidthInteger>(_ key: Key) throws -> T {
        try input.integer(try entry(key), as: T.self, codingPath: codingPath + [key])
    }

    private func decoder(_ key: any CodingKey, _ v: BinaryStateInput.Value) -> BinaryStateDecoder {
        BinaryStateDecoder(input: input, value: v, codingPath: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder(key, try entry(key)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder(key, try entry(key)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        let key = BinaryStateKey(stringValue: "super")
        return decoder(key, try entry(key))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder { decoder(key, try entry(key)) }
}

/// Unkeyed and single-value containers read the same scalars, each from the value `next` hands out.
protocol BinaryPositionalDecoding {
    var input: BinaryStateInput { get }
    /// The value to read (an unkeyed container advances past it).
    func next() throws -> BinaryStateInput.Value
    /// The coding path of the value `next` returned last.
    var lastPath: [any CodingKey] { get }
}

extension BinaryPositionalDecoding {
    func decode(_ type: Bool.Type) throws -> Bool { try input.bool(try next(), codingPath: lastPath) }
    func decode(_ type: String.Type) throws -> String { try input.string(try next(), codingPath: lastPath) }
    func decode(_ type: Double.Type) throws -> Double { try input.double(try next(), codingPath: lastPath) }
    func decode(_ type: Float.Type) throws -> Float { try input.float(try next(), codingPath: lastPath) }
    func decode(_ type: Int.Type) throws -> Int { try integer() }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try input.decodeValue(type, try next(), codingPath: lastPath) }

    @inline(__always)
    private func integer<T: FixedWidthInteger>() throws -> T { try input.integer(try next(), as: T.self, codingPath: lastPath) }
}

struct BinaryUnkeyedDecoding: UnkeyedDecodingContainer, BinaryPositionalDecoding {
    let input: BinaryStateInput
    let codingPath: [any CodingKey]
    /// The elements: tagged values, or the fixed-width entries of a byte blob or an integer block.
    private let elements: [BinaryStateInput.Value]?
    private let block: (tag: BinaryStateTag, count: Int, start: Int, width: Int)?
    /// Shared with copies, so that `next` can advance from a non-mutating requirement.
    private let cursor = Cursor()
    private final class Cursor { var index = 0 }

    init(input: BinaryStateInput, value: BinaryStateInput.Value, codingPath: [any CodingKey]) throws {
        self.input = input
        self.codingPath = codingPath
        switch value.tag {
        case .unkeyed:
            elements = try input.elements(of: value, codingPath: codingPath)
            block = nil
        case .integers:
            elements = nil
            block = input.blockElements(value)
        case .bytes:
            elements = nil
            block = (.u8, value.end - value.body - 4, value.body + 4, 1)
        default:
            throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath,
                debugDescription: "binary state, byte \(value.offset): expected an array, found \(value.tag)"))
        }
    }

    var count: Int? { elements?.count ?? block?.count }
    var currentIndex: Int { cursor.index }
    var isAtEnd: Bool { cursor.index >= count! }

    var lastPath: [any CodingKey] { codingPath + [BinaryStateKey(intValue: cursor.index - 1)] }

    func next() throws -> BinaryStateInput.Value {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath + [BinaryStateKey(intValue: cursor.index)],
                                                              debugDescription: "binary state: the array has only \(count!) elements"))
        }
        defer { cursor.index += 1 }
        if let elements { return elements[cursor.index] }
        let b = block!, start = b.start + cursor.index * b.width
        return .init(tag: b.tag, body: start, end: start + b.width)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, let elements, elements[cursor.index].tag == .null else { return false }
        cursor.index += 1
        return true
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try nestedDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try nestedDecoder().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try nestedDecoder() }

    private func nestedDecoder() throws -> BinaryStateDecoder {
        let v = try next()
        return BinaryStateDecoder(input: input, value: v, codingPath: lastPath)
    }
}

struct BinarySingleValueDecoding: SingleValueDecodingContainer, BinaryPositionalDecoding {
    let input: BinaryStateInput
    let value: BinaryStateInput.Value
    let codingPath: [any CodingKey]

    func next() throws -> BinaryStateInput.Value { value }
    var lastPath: [any CodingKey] { codingPath }
    func decodeNil() -> Bool { input.isNil(value) }
}
