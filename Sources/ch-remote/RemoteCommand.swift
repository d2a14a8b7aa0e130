import ArgumentParser
import CloudHypervisorClient
import Foundation

/// One HTTP request a subcommand sends: `PUT vm.add-disk` with a JSON body, `GET vm.info`, …
struct APIRequest {
    var method: String
    var endpoint: String
    var body: Data?
}

/// A subcommand that turns its arguments into one request, sends it and prints the answer as CH's ch-remote
/// does: the response body as received (nothing for 204), or the error chain on stderr and exit status 1.
protocol RemoteCommand: AsyncParsableCommand {
    var global: GlobalOptions { get }
    func request() throws -> APIRequest
}

extension RemoteCommand {
    mutating func run() async throws {
        do {
            guard let socket = global.apiSocket else {
                throw CommandFailure(["Please provide the --api-socket option"])
            }
            let request = try request()
            let client = CloudHypervisorClient(socketPath: socket)
            let body = try await client.request(method: request.method, path: request.endpoint, body: request.body)
            if !body.isEmpty { print(String(decoding: body, as: UTF8.self)) }
        } catch {
            CommandFailure(error).report()
            throw ExitCode(1)
        }
    }
}

/// A subcommand's failure as a chain of messages, outermost first, printed the way CH's ch-remote prints
/// its error chains.
struct CommandFailure: Error {
    let chain: [String]

    init(_ chain: [String]) { self.chain = chain }

    /// `context` names what was being parsed ("Error parsing disk syntax") above the parser's own message.
    init(_ context: String, _ error: any Error) { chain = [context] + CommandFailure(error).chain }

    init(_ error: any Error) {
        switch error {
        case let failure as CommandFailure:
            chain = failure.chain
        case let .http(status, serverChain) as CloudHypervisorClientError:
            chain = ["http client error",
                     "Server responded with \(CloudHypervisorClientError.reasonPhrase(status)) (\(status))"] + serverChain
        case let .badResponse(detail) as CloudHypervisorClientError:
            chain = ["http client error", detail]
        default:
            chain = ["\(error)"]
        }
    }

    func report() {
        var text = "Error: ch-remote exited with the following "
        if chain.count == 1 {
            text += "error:\n  \(chain[0])\n"
        } else {
            text += "chain of errors:\n"
            for (level, message) in chain.enumerated() { text += "  \(level): \(message)\n" }
        }
        FileHandle.standardError.write(Data(text.utf8))
    }
}

extension APIRequest {
    /// A PUT whose body is `value` as JSON.
    static func put(_ endpoint: String, _ value: some Encodable) throws -> APIRequest {
        APIRequest(method: "PUT", endpoint: endpoint, body: try JSONEncoder().encode(value))
    }

    /// `parse` applied to a CLI argument, its errors wrapped as CH words them ("Error parsing disk syntax").
    static func put<T: Encodable>(_ endpoint: String, parsing argument: String, what: String,
                                  _ parse: (String) throws -> T) throws -> APIRequest {
        let value: T
        do { value = try parse(argument) } catch { throw CommandFailure("Error parsing \(what) syntax", error) }
        return try put(endpoint, value)
    }
}

/// CH's ch-remote hands file descriptors (`fd=`, `net_fds=`, …) to the VMM as SCM_RIGHTS next to the request;
/// this one cannot yet, so it refuses instead of sending numbers that mean nothing in the VMM's process.
func refuseDescriptors(option: String, if present: Bool) throws {
    guard present else { return }
    throw CommandFailure(["\(option)=: passing file descriptors is not supported by this ch-remote yet; "
                          + "use a path-based option instead"])
}
