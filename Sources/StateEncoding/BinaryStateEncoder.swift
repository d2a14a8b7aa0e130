import Foundation

/// Streams values straight into one byte array (no tree of boxed values). A container's body length and
/// count are placeholders until it is finished, which is when something is next written to a container
/// below it on the stack (or at the end): containers must be filled one at a time, as synthesized `Codable`
/// does. Writing to a container that was already finished, or a second value into one slot, is refused.
///
/// The buffer and the stack are only touched from the thread encoding, one access at a time, so their
/// dynamic exclusivity checks (a quarter of the time spent encoding a vCPU) are turned off.
final class BinaryStateWriter {
    @exclusivity(unchecked) var bytes: [UInt8] = []
    /// Open containers, innermost last: where their length field is, and entries written so far.
    @exclusivity(unchecked) private var open: [(id: Int, lengthOffset: Int, count: UInt32)] = []
    private var nextID = 0
    /// The first misuse, reported by `finish` (container creation cannot throw).
    private var failure: (any Error)?

    init() { bytes.reserveCapacity(16 << 10) }

    /// Closes every container; throws the first misuse.
    func finish() throws -> [UInt8] {
        while !open.isEmpty { closeInnermost() }
        if let failure { throw failure }
        return bytes
    }

    func fail(_ reason: String, codingPath: [any CodingKey]) {
        if failure == nil {
            failure = EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: reason))
        }
    }

    /// Starts a container in the slot at the end of the buffer; returns its id.
    func openContainer(_ tag: BinaryStateTag) -> Int {
        bytes.append(tag.rawValue)
        let lengthOffset = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 8))
        nextID += 1
        open.append((nextID, lengthOffset, 0))
        return nextID
    }

    /// Makes `id` the innermost open container (finishing those opened inside it) and counts one more entry.
    func beginEntry(in id: Int, codingPath: [any CodingKey]) throws {
        while let innermost = open.last, innermost.id > id { closeInnermost() }
        guard open.last?.id == id else {
            let reason = "a container was written to after it was finished (fill containers one at a time)"
            fail(reason, codingPath: codingPath)
            throw EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: reason))
        }
        open[open.count - 1].count += 1
    }

    private func closeInnermost() {
        let c = open.removeLast()
        patch(UInt32(truncatingIfNeeded: bytes.count - c.lengthOffset - 8), at: c.lengthOffset)
        patch(c.count, at: c.lengthOffset + 4)
    }

    private func patch(_ value: UInt32, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }

    // MARK: Values

    func tag(_ tag: BinaryStateTag) { bytes.append(tag.rawValue) }

    @inline(__always)  // so that each concrete encode(_: UInt32) gets a specialized copy
    func integer<T: FixedWidthInteger>(_ value: T) {
        bytes.append(BinaryStateTag.integer(T.self).rawValue)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    func length(_ count: Int, codingPath: @autoclosure () -> [any CodingKey]) throws {
        guard let n = UInt32(exactly: count) else {
            let reason = "\(count) elements or bytes do not fit a 32-bit length"
            throw EncodingError.invalidValue(count, .init(codingPath: codingPath(), debugDescription: reason))
        }
        withUnsafeBytes(of: n.littleEndian) { bytes.append(contentsOf: $0) }
    }

    func blob<C: Collection>(_ tag: BinaryStateTag, _ content: C, codingPath: @autoclosure () -> [any CodingKey]) throws where C.Element == UInt8 {
        self.tag(tag)
        try length(content.count, codingPath: codingPath())
        bytes.append(contentsOf: content)
    }

    /// One typed block: no tag per element, the elements stored back to back.
    func integers<T: FixedWidthInteger>(_ values: [T], codingPath: @autoclosure () -> [any CodingKey]) throws {
        tag(.integers)
        bytes.append(BinaryStateTag.integer(T.self).rawValue)
        try length(values.count, codingPath: codingPath())
        let start = bytes.count, width = MemoryLayout<T>.size
        bytes.append(contentsOf: repeatElement(0, count: values.count * width))
        bytes.withUnsafeMutableBytes { out in
            for (i, v) in values.enumerated() { out.storeBytes(of: v.littleEndian, toByteOffset: start + i * width, as: T.self) }
        }
    }

    /// Writes `value` at the end of the buffer: byte and integer arrays as blocks, everything else through
    /// its own `encode(to:)`. A value that writes nothing is stored as null, so every slot holds a value.
    /// (Type identity is checked before casting: a failing `as?` costs a runtime cast for every struct.)
    func encodeValue<T: Encodable>(_ value: T, codingPath: @autoclosure () -> [any CodingKey]) throws {
        if T.self == Data.self { return try blob(.bytes, value as! Data, codingPath: codingPath()) }
        if T.self == [UInt8].self { return try blob(.bytes, value as! [UInt8], codingPath: codingPath()) }
        if T.self == [UInt16].self { return try integers(value as! [UInt16], codingPath: codingPath()) }
        if T.self == [UInt32].self { return try integers(value as! [UInt32], codingPath: codingPath()) }
        if T.self == [UInt64].self { return try integers(value as! [UInt64], codingPath: codingPath()) }
        if T.self == [Int].self { return try integers(value as! [Int], codingPath: codingPath()) }
        if T.self == [Int32].self { return try integers(value as! [Int32], codingPath: codingPath()) }
        if T.self == [Int64].self { return try integers(value as! [Int64], codingPath: codingPath()) }
        let slot = bytes.count
        try value.encode(to: BinaryStateEncoder(writer: self, slot: slot, codingPath: codingPath()))
        if bytes.count == slot { tag(.null) }
    }
}

/// The `Encoder` handed to one value's `encode(to:)`: it owns the slot at `slot` in the buffer.
struct BinaryStateEncoder: Encoder {
    let writer: BinaryStateWriter
    let slot: Int
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The container id, after checking that nothing was written since the slot was handed out.
    private func container(_ tag: BinaryStateTag) -> Int {
        if writer.bytes.count != slot {
            writer.fail("a value asked for a second container, or for one after other values were written",
                        codingPath: codingPath)
        }
        return writer.openContainer(tag)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(BinaryKeyedEncoding<Key>(writer: writer, id: container(.keyed), codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        BinaryUnkeyedEncoding(writer: writer, id: container(.unkeyed), codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        BinarySingleValueEncoding(writer: writer, slot: slot, codingPath: codingPath)
    }
}

/// The scalar writes every container kind shares; `begin` claims the place the value goes.
protocol BinaryScalarEncoding {
    var writer: BinaryStateWriter { get }
    var codingPath: [any CodingKey] { get }
}

extension BinaryScalarEncoding {
    func writeNil() { writer.tag(.null) }
    func write(_ value: Bool) { writer.tag(value ? .yes : .no) }
    func write(_ value: String) throws { try writer.blob(.string, value.utf8, codingPath: codingPath) }
    func write(_ value: Double) { writer.tag(.f64); writer.bytes.append(contentsOf: withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)) }
    func write(_ value: Float) { writer.tag(.f32); writer.bytes.append(contentsOf: withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)) }
}

struct BinaryKeyedEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol, BinaryScalarEncoding {
    let writer: BinaryStateWriter
    let id: Int
    let codingPath: [any CodingKey]

    /// Claims the next entry and writes its key (`Key`, or `super`, which `Key` need not have).
    private func begin<K: CodingKey>(_ key: K) throws {
        try writer.beginEntry(in: id, codingPath: codingPath)
        let utf8 = key.stringValue.utf8
        guard (1...255).contains(utf8.count) else {
            throw EncodingError.invalidValue(key.stringValue, .init(codingPath: codingPath + [key],
                                                                    debugDescription: "keys must be 1…255 bytes of UTF-8"))
        }
        writer.bytes.append(UInt8(utf8.count))
        writer.bytes.append(contentsOf: utf8)
    }

    mutating func encodeNil(forKey key: Key) throws { try begin(key); writeNil() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try begin(key); write(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { try begin(key); try write(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try begin(key); write(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try begin(key); write(value) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try begin(key); writer.integer(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try begin(key)
        try writer.encodeValue(value, codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        nestedEncoder(key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        nestedEncoder(key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { nestedEncoder(BinaryStateKey(stringValue: "super")) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { nestedEncoder(key) }

    /// An encoder for the slot after `key` (container creation cannot throw: a misuse fails `finish`).
    private func nestedEncoder<K: CodingKey>(_ key: K) -> BinaryStateEncoder {
        do { try begin(key) } catch { writer.fail("\(error)", codingPath: codingPath + [key]) }
        return BinaryStateEncoder(writer: writer, slot: writer.bytes.count, codingPath: codingPath + [key])
    }
}

/// Unkeyed and single-value containers take the same writes, each into the next place `begin` claims.
protocol BinaryPositionalEncoding: BinaryScalarEncoding {
    mutating func begin() throws
    /// The coding path of the value `begin` claimed last.
    var lastPath: [any CodingKey] { get }
}

extension BinaryPositionalEncoding {
    mutating func encodeNil() throws { try begin(); writeNil() }
    mutating func encode(_ value: Bool) throws { try begin(); write(value) }
    mutating func encode(_ value: String) throws { try begin(); try write(value) }
    mutating func encode(_ value: Double) throws { try begin(); write(value) }
    mutating func encode(_ value: Float) throws { try begin(); write(value) }
    mutating func encode(_ value: Int) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: Int8) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: Int16) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: Int32) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: Int64) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: UInt) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: UInt8) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: UInt16) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: UInt32) throws { try begin(); writer.integer(value) }
    mutating func encode(_ value: UInt64) throws { try begin(); writer.integer(value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        try begin()
        try writer.encodeValue(value, codingPath: lastPath)
    }
}

struct BinaryUnkeyedEncoding: UnkeyedEncodingContainer, BinaryPositionalEncoding {
    let writer: BinaryStateWriter
    let id: Int
    let codingPath: [any CodingKey]
    private(set) var count = 0

    init(writer: BinaryStateWriter, id: Int, codingPath: [any CodingKey]) {
        self.writer = writer
        self.id = id
        self.codingPath = codingPath
    }

    var lastPath: [any CodingKey] { codingPath + [BinaryStateKey(intValue: count - 1)] }

    mutating func begin() throws {
        try writer.beginEntry(in: id, codingPath: codingPath)
        count += 1
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        nestedEncoder().container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { nestedEncoder().unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { nestedEncoder() }

    private mutating func nestedEncoder() -> BinaryStateEncoder {
        do { try begin() } catch { writer.fail("\(error)", codingPath: codingPath) }
        return BinaryStateEncoder(writer: writer, slot: writer.bytes.count, codingPath: lastPath)
    }
}

struct BinarySingleValueEncoding: SingleValueEncodingContainer, BinaryPositionalEncoding {
    let writer: BinaryStateWriter
    let slot: Int
    let codingPath: [any CodingKey]
    var lastPath: [any CodingKey] { codingPath }

    /// The slot takes exactly one value.
    func begin() throws {
        guard writer.bytes.count == slot else {
            let reason = "a single value container was written twice, or after other values"
            throw EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: reason))
        }
    }
}
