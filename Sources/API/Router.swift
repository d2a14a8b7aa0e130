import Foundation
import NIOHTTP1
import VMM

/// Turns one request into a `VmmCommand`, awaits the VMM's answer and shapes it as CH does. It never
/// blocks its thread (the event loop): the handler suspends until the VMM's own thread answers.
struct Router: Sendable {
    let handler: any VmmCommandHandling

    func respond(to request: APIRequest) async -> APIResponse {
        let endpoint: Endpoint
        let command: VmmCommand
        do {
            (endpoint, command) = try Self.route(request)
        } catch {
            return error.response
        }
        switch await handler.request(command) {
        case let .success(answer): return Self.response(to: answer, emptySuccess: endpoint.emptySuccess)
        case let .failure(error): return APIFailure.vmm(error).response
        }
    }

    /// The endpoint and command for a request, or the 400/404 CH gives instead.
    static func route(_ request: APIRequest) throws(APIFailure) -> (Endpoint, VmmCommand) {
        guard request.path.hasPrefix(Endpoint.prefix),
              let endpoint = Endpoint.all[String(request.path.dropFirst(Endpoint.prefix.count))] else {
            throw .notFound(path: request.path)
        }
        let name = endpoint.shared.name
        guard request.method == endpoint.method else {
            throw .badRequest("\(name) takes \(endpoint.method.rawValue), not \(request.method.rawValue)")
        }
        switch endpoint.shared.body {
        case .none: guard request.body == nil else { throw .badRequest("\(name) takes no request body") }
        case .ignored: break
        case .required: guard request.body != nil else { throw .badRequest("\(name) needs a JSON request body") }
        }
        switch endpoint.shared.command(request.body.map { Data($0.readableBytesView) }) {
        case let .success(command): return (endpoint, command)
        case let .failure(failure): throw .deserialize(failure)
        }
    }

    static func response(to answer: VmmResponse, emptySuccess: APIResponse) -> APIResponse {
        do {
            return try APIJSON.body(of: answer).map { APIResponse(status: .ok, body: Array($0)) } ?? emptySuccess
        } catch {
            return .cannotEncode(error)
        }
    }
}
