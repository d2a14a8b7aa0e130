import NIOHTTP1
import VMM

/// A request answered with an error. `messages` is Cloud Hypervisor's error body: a JSON array of strings
/// reading from the top-level error down to its root cause. The first string is always CH's own; where CH
/// stops there (e.g. `["Bad Request"]`), a second string says what exactly was wrong.
struct APIFailure: Error, Sendable, Equatable {
    let status: HTTPResponseStatus
    let messages: [String]

    init(_ status: HTTPResponseStatus, _ messages: [String]) {
        self.status = status
        self.messages = messages
    }

    var response: APIResponse { .json(messages, status: status) }

    /// The VMM refused or failed the command: CH's `["Error from API", …chain]`, status by kind.
    static func vmm(_ error: VmmError) -> APIFailure {
        let status: HTTPResponseStatus = switch error.kind {
        case .badRequest: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .internalError: .internalServerError
        case .tooManyRequests: .tooManyRequests
        }
        return APIFailure(status, error.apiChain)
    }

    /// The body is not valid JSON or does not fit the endpoint's type.
    static func deserialize(_ failure: APIDecodingFailure) -> APIFailure {
        APIFailure(.badRequest, failure.chain)
    }

    /// Wrong method, missing body, or a body where none is allowed. CH answers 400 to all of these and
    /// never 405.
    static func badRequest(_ detail: String) -> APIFailure {
        APIFailure(.badRequest, ["Bad Request", detail])
    }

    static func notFound(path: String) -> APIFailure {
        APIFailure(.notFound, ["Not Found", "No API endpoint at \(path)"])
    }

    /// CH (micro_http) refuses bodies over its limit as a malformed request: 400, with this wording.
    static func payloadTooLarge(size: Int?, limit: Int) -> APIFailure {
        let what = size.map { "Request payload with size \($0)" } ?? "Request payload"
        return badRequest("\(what) is larger than the limit of \(limit) allowed by server.")
    }

    /// Bytes that are not HTTP/1.1.
    static func malformedHTTP(_ error: HTTPParserError) -> APIFailure {
        badRequest("Invalid HTTP request: \(error)")
    }
}
