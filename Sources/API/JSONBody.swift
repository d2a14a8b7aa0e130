import Foundation
import NIOCore

/// A request body to decode into one of the Config types. Unknown fields are ignored (the Config types
/// decode leniently, as CH's serde types do); failures become CH's 400 "Failed to deserialize JSON" with a
/// detail that names the offending field, since that is what a client needs to fix its request.
struct JSONBody: Sendable {
    let bytes: ByteBuffer

    func decode<T: Decodable>(_ type: T.Type = T.self) throws(APIFailure) -> T {
        let data = Data(bytes.readableBytesView)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw .deserialize(Self.describe(error, in: data))
        } catch {
            throw .deserialize("\(error)")
        }
    }

    /// serde-like wording: "missing field `size` at `memory`".
    static func describe(_ error: DecodingError, in data: Data) -> String {
        switch error {
        case let .keyNotFound(key, context):
            return "missing field `\(key.stringValue)`" + location(context.codingPath)
        case let .typeMismatch(_, context):
            return "invalid type" + location(context.codingPath) + ": " + context.debugDescription
        case let .valueNotFound(type, context):
            return "invalid type: null, expected \(type)" + location(context.codingPath)
        case let .dataCorrupted(context) where context.codingPath.isEmpty:
            return syntaxError(in: data)
        case let .dataCorrupted(context):
            return context.debugDescription + location(context.codingPath)
        @unknown default:
            return "\(error)"
        }
    }

    /// JSONDecoder says only "not valid JSON", both for bad syntax and for a number its field cannot
    /// hold; the parser tells the two apart and says where the syntax breaks.
    private static func syntaxError(in data: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)
            return "a number does not fit its field (negative, fractional or too large)"
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "invalid JSON"
        }
    }

    /// `` at `disks[0].path` `` for a nested value, nothing at the top level.
    private static func location(_ path: [any CodingKey]) -> String {
        guard !path.isEmpty else { return "" }
        var text = ""
        for key in path {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return " at `\(text)`"
    }
}
