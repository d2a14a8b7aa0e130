// CH's serde conventions, expressed once: `#[serde(default)]` fields fall back to CH's default when the key
// is missing, and `Option` fields of structs without `skip_serializing_none` are written as `null`.

extension KeyedDecodingContainer {
    /// The value under `key`, or CH's default when the key is missing. An explicit `null` for a non-optional
    /// field is an error, as with serde's `#[serde(default)]` (only a missing key takes the default).
    func decode<T: Decodable>(_ key: Key, default value: @autoclosure () -> T) throws -> T {
        guard contains(key) else { return value() }
        return try decode(T.self, forKey: key)
    }

    /// A file descriptor number that crossed a process boundary inside JSON. CH never trusts those
    /// (the real descriptors travel as SCM_RIGHTS) and turns each into -1; so do we.
    func decodeStaleFD(_ key: Key) throws -> Int32? {
        try decodeIfPresent(Int32.self, forKey: key).map { _ in -1 }
    }

    func decodeStaleFDs(_ key: Key) throws -> [Int32]? {
        try decodeIfPresent([Int32].self, forKey: key).map { Array(repeating: -1, count: $0.count) }
    }
}

extension KeyedEncodingContainer {
    /// Writes `null` for nil, as serde does for an `Option` without `skip_serializing_if`.
    mutating func encodeNullable<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) } else { try encodeNil(forKey: key) }
    }
}

/// Any JSON key, for the few CH structs that reject unknown fields (`#[serde(deny_unknown_fields)]`).
struct AnyCodingKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws, naming the first key not in `allowed`, as serde's `deny_unknown_fields` does.
    func rejectUnknownKeys(_ allowed: Set<String>) throws {
        let c = try container(keyedBy: AnyCodingKey.self)
        if let unknown = c.allKeys.first(where: { !allowed.contains($0.stringValue) }) {
            throw DecodingError.dataCorruptedError(
                forKey: unknown, in: c,
                debugDescription: "unknown field `\(unknown.stringValue)`, expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }
}
