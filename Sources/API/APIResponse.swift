import Foundation
import NIOHTTP1
import VMM

/// What the server sends back for one request. Every response is JSON (CH sets `Content-Type:
/// application/json` even on 204), so only the status and the body bytes vary.
struct APIResponse: Sendable, Equatable {
    var status: HTTPResponseStatus
    var body: [UInt8]

    static let noContent = APIResponse(status: .noContent, body: [])

    /// A body-less 200: CH's answer to vmm.shutdown (its OpenAPI document says 204).
    static let emptyOK = APIResponse(status: .ok, body: [])

    static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok) -> APIResponse {
        do {
            return APIResponse(status: status, body: Array(try APIJSON.encode(value)))
        } catch {
            return cannotEncode(error)
        }
    }

    static func cannotEncode(_ error: any Error) -> APIResponse {
        APIFailure(.internalServerError, ["Internal Server Error", "Cannot encode the response: \(error)"]).response
    }
}
