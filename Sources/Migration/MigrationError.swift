import Glibc

/// Why a migration step failed. Each message says which side, which step and what to check, because the
/// text ends up verbatim in the `migration-failed` event and the API's error chain.
public enum MigrationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL is not `unix:<path>` or `tcp:<host>:<port>`.
    case invalidURL(String, reason: String)
    /// A socket call failed (`operation` names it, `target` the endpoint).
    case socket(operation: String, target: String, errno: Int32)
    /// The peer closed the connection (or it broke) while we were `during`.
    case connectionLost(during: String, errno: Int32?)
    /// The peer made no progress for `seconds` while we were `during`.
    case timedOut(during: String, seconds: Int)
    /// The peer sent something this protocol does not allow.
    case protocolViolation(String)
    /// The peer answered a command with an error response.
    case refused(command: String, reason: String)
    /// The migration was stopped on purpose (a cancel, the VMM shutting down, a guest reset).
    case cancelled(String)
    /// The local side could not go on (building the VM, reading state, not converging).
    case failed(String)

    public var description: String {
        switch self {
        case let .invalidURL(url, reason):
            return "invalid migration URL '\(url)': \(reason) (expected unix:<path> or tcp:<host>:<port>, IPv6 as tcp:[addr]:port)"
        case let .socket(operation, target, err):
            return "\(operation) \(target) failed: \(String(cString: strerror(err)))\(Self.hint(err))"
        case let .connectionLost(during, err):
            let why = err.map { ": " + String(cString: strerror($0)) } ?? ""
            return "the peer closed the connection while \(during)\(why)"
        case let .timedOut(during, seconds):
            return "the peer made no progress for \(seconds) s while \(during) (is it alive and reading?)"
        case let .protocolViolation(what):
            return "protocol violation: \(what)"
        case let .refused(command, reason):
            return "the destination refused \(command): \(reason)"
        case let .cancelled(why):
            return "migration cancelled: \(why)"
        case let .failed(why):
            return why
        }
    }

    private static func hint(_ err: Int32) -> String {
        switch err {
        case ECONNREFUSED, ENOENT: return " (is the destination VMM running vm.receive-migration on this URL?)"
        case EADDRINUSE: return " (another process listens there: pick another port or path)"
        case EACCES, EPERM: return " (permission denied: check the socket path's directory or use a port above 1023)"
        default: return ""
        }
    }
}
