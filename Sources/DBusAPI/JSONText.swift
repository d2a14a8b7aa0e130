import Config
import Foundation

/// The JSON strings the methods take and return, shaped as the REST API's bodies.
enum JSONText {
    /// Decodes a method's argument. Unknown fields are ignored (the Config types decode leniently, as
    /// CH's serde types do); a failure names the offending field, since that is what a caller must fix.
    static func decode<T: Decodable>(_ text: String, as type: T.Type = T.self) throws(DBusFailure) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch let error as DecodingError {
            throw .deserialize(error.summary)
        } catch {
            throw .deserialize("\(error)")
        }
    }

    /// Compact JSON as the REST API writes it (serde does not escape '/', and paths are in most bodies).
    static func encode(_ value: some Encodable) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }
}
