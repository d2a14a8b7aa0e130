import Foundation

/// Any JSON value, read with JSONDecoder so that booleans and numbers stay apart (JSONSerialization
/// gives both as NSNumber).
enum JSONValue: Codable, Equatable, CustomStringConvertible {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .number(n): try c.encode(n)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }

    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }

    var data: Data { get throws { try JSONEncoder().encode(self) } }

    var fields: [String: JSONValue] {
        if case let .object(o) = self { o } else { [:] }
    }

    subscript(key: String) -> JSONValue? { fields[key] }

    var strings: [String] {
        if case let .array(a) = self { a.compactMap { if case let .string(s) = $0 { s } else { nil } } } else { [] }
    }

    var description: String { (try? data).map { String(decoding: $0, as: UTF8.self) } ?? "?" }
}

/// docs/openapi.json, with what a validator needs: operations by endpoint name, `$ref`/`allOf` resolution,
/// and a check of a JSON value against a schema.
struct OpenAPIDocument {
    let root: JSONValue

    /// Found from this file's place in the repository, so the test reads the committed document.
    static func load() throws -> OpenAPIDocument {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return OpenAPIDocument(root: try .parse(Data(contentsOf: repository.appendingPathComponent("docs/openapi.json"))))
    }

    /// The path of the first server URL (`/api/v1`), which every document path is relative to.
    var basePath: String {
        guard case let .array(servers)? = root["servers"], case let .string(url)? = servers.first?["url"] else { return "" }
        return URL(string: url)?.path ?? ""
    }

    /// "METHOD /api/v1/path" for every operation.
    var operations: Set<String> {
        Set(root["paths"]?.fields.flatMap { path, item in item.fields.keys.map { "\($0.uppercased()) \(basePath)\(path)" } } ?? [])
    }

    /// The operation of an endpoint (each has exactly one method).
    func operation(_ endpoint: String) -> JSONValue? { root["paths"]?["/" + endpoint]?.fields.values.first }

    func requestSchema(_ endpoint: String) -> JSONValue? {
        operation(endpoint)?["requestBody"]?["content"]?["application/json"]?["schema"]
    }

    func responseSchema(_ endpoint: String, _ status: String) -> JSONValue? {
        operation(endpoint)?["responses"]?[status]?["content"]?["application/json"]?["schema"]
    }

    func schema(named name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/" + name)]) }

    /// The schema as a validator sees it: `$ref` followed, `allOf` members merged (properties and
    /// required lists united; the outer schema's own keys win).
    func resolved(_ schema: JSONValue) -> [String: JSONValue] {
        var s = schema.fields
        if case let .string(ref)? = s["$ref"] {
            let name = String(ref.dropFirst("#/components/schemas/".count))
            return resolved(root["components"]?["schemas"]?[name] ?? .null)
        }
        if case let .array(parts)? = s.removeValue(forKey: "allOf") {
            for part in parts.map(resolved) {
                s.merge(part) { mine, theirs in
                    switch (mine, theirs) {
                    case let (.object(a), .object(b)): .object(a.merging(b) { x, _ in x })
                    case let (.array(a), .array(b)): .array(a + b)
                    default: mine
                    }
                }
            }
        }
        return s
    }

    /// Where `value` does not fit `schema`: a key that is not a property, a wrong type, a value outside an
    /// enum, a `null` that is not nullable, a required property not written. Empty when it fits.
    func problems(_ value: JSONValue, against schema: JSONValue, at path: String) -> [String] {
        let s = resolved(schema)
        if value == .null { return s["nullable"] == .bool(true) ? [] : ["\(path): null, but not nullable"] }
        if case let .array(options)? = s["oneOf"] {
            return options.contains { problems(value, against: $0, at: path).isEmpty } ? [] : ["\(path): \(value) fits no oneOf variant"]
        }
        if case let .array(allowed)? = s["enum"], !allowed.contains(value) { return ["\(path): \(value) is not in \(allowed)"] }
        switch (s["type"], value) {
        case (.string("string")?, .string), (.string("boolean")?, .bool), (.string("number")?, .number):
            return []
        case let (.string("integer")?, .number(n)):
            return n == n.rounded() ? [] : ["\(path): \(n) is not an integer"]
        case let (.string("array")?, .array(items)):
            return items.enumerated().flatMap { problems($1, against: s["items"] ?? .null, at: "\(path)[\($0)]") }
        case let (.string("object")?, .object(fields)):
            let properties = s["properties"]?.fields ?? [:]
            let missing = (s["required"]?.strings ?? []).filter { fields[$0] == nil }.map { "\(path): required `\($0)` not written" }
            return missing + fields.sorted { $0.key < $1.key }.flatMap { key, field in
                if let property = properties[key] { return problems(field, against: property, at: "\(path).\(key)") }
                if case .object? = s["additionalProperties"] {
                    return problems(field, against: s["additionalProperties"]!, at: "\(path).\(key)")
                }
                return ["\(path): `\(key)` is not a property of the schema"]
            }
        default:
            return ["\(path): \(value) is not of type \(s["type"].map { "\($0)" } ?? "(none)")"]
        }
    }
}
