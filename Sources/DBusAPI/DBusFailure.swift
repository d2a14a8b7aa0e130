import Foundation
import VMM

/// A method call answered with a D-Bus error. The message is the REST API's error body, the JSON array
/// of the error chain (`["Error from API", …]`), so a client reads failures the same way on both APIs.
struct DBusFailure: Error, Sendable, Equatable {
    /// CH's D-Bus API (zbus `fdo::Error::Failed`) uses this name for every failure.
    static let failed = "org.freedesktop.DBus.Error.Failed"
    static let invalidArgs = "org.freedesktop.DBus.Error.InvalidArgs"

    let name: String
    let chain: [String]

    /// The VMM refused or failed the command.
    static func vmm(_ error: VmmError) -> DBusFailure {
        DBusFailure(name: failed, chain: error.apiChain)
    }

    /// The argument is not valid JSON or does not fit the method's type.
    static func deserialize(_ failure: APIDecodingFailure) -> DBusFailure {
        DBusFailure(name: failed, chain: failure.chain)
    }

    /// The call's arguments do not match the method's signature.
    static func signature(method: DBusMethod, got: String) -> DBusFailure {
        let expected = method.inSignature.isEmpty ? "no arguments" : "one JSON string (signature \"s\")"
        return DBusFailure(name: invalidArgs, chain: ["Invalid arguments", "\(method.name) takes \(expected), not signature \"\(got)\""])
    }

    var message: String {
        (try? APIJSON.encode(chain)).map { String(decoding: $0, as: UTF8.self) } ?? chain.joined(separator: ": ")
    }
}
