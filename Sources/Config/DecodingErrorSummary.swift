/// One-line explanations of JSON decoding failures that name the field, in the spirit of serde's messages
/// ("missing field `size` at memory"), for API error bodies and CLI output. Swift's own descriptions dump
/// the whole coding context.
extension DecodingError {
    public var summary: String {
        switch self {
        case let .keyNotFound(key, context):
            return "missing field `\(key.stringValue)`" + Self.location(context.codingPath)
        case let .typeMismatch(type, context):
            return "invalid type: expected \(type)" + Self.location(context.codingPath) + Self.detail(context)
        case let .valueNotFound(type, context):
            return "invalid value: null, expected \(type)" + Self.location(context.codingPath)
        case let .dataCorrupted(context):
            return (context.codingPath.isEmpty ? "invalid JSON" : "invalid value" + Self.location(context.codingPath))
                + Self.detail(context)
        @unknown default:
            return String(describing: self)
        }
    }

    /// ` at disks[0].mac` for a path, nothing at the top level.
    private static func location(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "" }
        var text = ""
        for key in path {
            if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return " at \(text)"
    }

    private static func detail(_ context: Context) -> String {
        let underlying = context.underlyingError.map { " (\($0))" } ?? ""
        return context.debugDescription.isEmpty ? underlying : ": \(context.debugDescription)\(underlying)"
    }
}
