#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// A status and body as the VMM sent them.
struct HTTPReply: Sendable {
    var status: Int
    var body: [UInt8]
}

/// One HTTP/1.1 exchange over a fresh UNIX-socket connection, as ch-remote does it: one request, read the
/// whole answer, close. Bodies are framed with Content-Length (CH's server does not accept chunked bodies).
enum UnixHTTPTransport {
    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    static func exchange(socketPath: String, group: any EventLoopGroup, method: HTTPMethod, uri: String,
                         body: [UInt8]?) async throws -> HTTPReply {
        let connection: Connection
        do {
            connection = try await ClientBootstrap(group: group)
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw CloudHypervisorClientError.cannotConnect(socketPath: socketPath, reason: describe(error))
        }
        do {
            return try await connection.executeThenClose { inbound, outbound in
                var parts: [HTTPClientRequestPart] = [.head(requestHead(method: method, uri: uri, bodyLength: body?.count))]
                if let body, !body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                parts.append(.end(nil))
                // A server may answer and close as soon as it has read enough (e.g. rejecting an oversized body),
                // so a failed write is only an error when no answer arrives.
                var writeError: (any Error)?
                do { try await outbound.write(contentsOf: parts) } catch { writeError = error }
                do { return try await readReply(inbound) } catch { throw writeError ?? error }
            }
        } catch let error as CloudHypervisorClientError {
            throw error
        } catch {
            throw CloudHypervisorClientError.badResponse(describe(error))
        }
    }

    private static func requestHead(method: HTTPMethod, uri: String, bodyLength: Int?) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "Host", value: "localhost")
        head.headers.add(name: "Accept", value: "*/*")
        if let bodyLength {
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(bodyLength))
        } else if method != .GET {
            // Without a length NIO would frame a PUT as chunked; CH reads `Content-Length: 0` as "no body".
            head.headers.add(name: "Content-Length", value: "0")
        }
        return head
    }

    private static func readReply(_ inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>) async throws -> HTTPReply {
        var status: Int?
        var body: [UInt8] = []
        for try await part in inbound {
            switch part {
            case let .head(head):
                // 1xx answers are provisional; the real one follows.
                if head.status.code >= 200 { status = Int(head.status.code) }
            case var .body(buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                if let status { return HTTPReply(status: status, body: body) }
            }
        }
        throw CloudHypervisorClientError.badResponse("the connection closed before a complete answer arrived")
    }

    /// The most useful text for a connection or I/O failure: the errno explanation when there is one.
    private static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            return describe(first.error)
        }
        return String(describing: error)
    }
}
