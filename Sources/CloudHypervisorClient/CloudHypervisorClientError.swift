import Config

/// Why a call to Cloud Hypervisor's API failed.
public enum CloudHypervisorClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing is listening on the socket (no such file, refused, not a socket, path too long, …).
    case cannotConnect(socketPath: String, reason: String)
    /// The VMM answered with an error status; `chain` is its error chain, outermost first (CH's JSON array
    /// body), or the raw body as one entry when it was not such an array.
    case http(status: Int, chain: [String])
    /// The answer could not be read or understood.
    case badResponse(String)

    public var description: String {
        switch self {
        case let .cannotConnect(path, reason):
            return "cannot connect to \(path): \(reason) (is cloud-hypervisor running with --api-socket?)"
        case let .http(status, chain):
            let head = "server responded with \(status) \(Self.reasonPhrase(status))"
            return chain.isEmpty ? head : "\(head): \(chain.joined(separator: ": "))"
        case let .badResponse(detail):
            return "bad response from the VMM: \(detail)"
        }
    }

    /// The status names ch-remote prints (CH's api_client StatusCode names).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "Ok"
        case 204: return "NoContent"
        case 400: return "BadRequest"
        case 404: return "NotFound"
        case 409: return "Conflict"
        case 429: return "TooManyRequests"
        case 500: return "InternalServerError"
        case 501: return "NotImplemented"
        default: return "Unknown"
        }
    }
}
