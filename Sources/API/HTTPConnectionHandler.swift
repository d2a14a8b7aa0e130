import Logging
import NIOCore
import NIOHTTP1

/// One API connection. It assembles each request, refusing an oversized body as soon as that is known
/// (from `Content-Length`, or while a chunked body accumulates) so no more than the limit is ever
/// buffered, hands the request to the router in a task of its own, and writes the answer.
///
/// NIO's pipelining handler in front of it delivers the next request only after the current response
/// has been written, so pipelined requests are answered in order and a slow command holds up only its
/// own connection.
final class HTTPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// CH's HTTP_PAYLOAD_MAX_SIZE.
    static let maxBodySize = 4 << 20
    /// CH's `Server` header.
    static let serverName = "Cloud Hypervisor API"

    private enum State {
        /// Waiting for the next request.
        case idle
        /// Reading a request's body into `body`.
        case receiving(HTTPRequestHead)
        /// The router has the request; its response is owed.
        case responding
        /// The request was refused before its end; the rest of it is dropped and the connection closes.
        case discarding
    }

    private var state = State.idle
    /// Kept apart from `state` so appending does not copy the buffer.
    private var body: ByteBuffer?
    private let router: Router
    private let executor: EventLoopTaskExecutor
    private let logger: Logger

    init(router: Router, executor: EventLoopTaskExecutor, logger: Logger) {
        self.router = router
        self.executor = executor
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case let (.head(head), .idle):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > Self.maxBodySize {
                refuse(.payloadTooLarge(size: length, limit: Self.maxBodySize), context: context)
            } else {
                state = .receiving(head)
            }
        case (.body(var chunk), .receiving):
            guard (body?.readableBytes ?? 0) + chunk.readableBytes <= Self.maxBodySize else {
                refuse(.payloadTooLarge(size: nil, limit: Self.maxBodySize), context: context)
                return
            }
            body.setOrWriteBuffer(&chunk)
        case let (.end, .receiving(head)):
            let request = APIRequest(method: head.method, uri: head.uri, body: body)
            state = .responding
            body = nil
            respond(to: request, keepAlive: head.isKeepAlive, context: context)
        default:
            break  // the rest of a refused request
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            logger.debug("API connection error: \(error)")
            context.close(promise: nil)
            return
        }
        // The decoder closes the connection after this: answer now unless a response is already owed.
        switch state {
        case .idle, .receiving: refuse(.malformedHTTP(parseError), context: context)
        case .responding, .discarding: break
        }
    }

    private func respond(to request: APIRequest, keepAlive: Bool, context: ChannelHandlerContext) {
        let answer = context.eventLoop.makePromise(of: APIResponse.self)
        Task(executorPreference: executor) { [router] in
            answer.succeed(await router.respond(to: request))
        }
        answer.futureResult.assumeIsolated().whenSuccess { response in
            // Before writing: the write delivers the next pipelined request to this handler at once.
            self.state = .idle
            self.write(response, keepAlive: keepAlive, context: context)
        }
    }

    private func refuse(_ failure: APIFailure, context: ChannelHandlerContext) {
        logger.debug("API request refused: \(failure.messages)")
        state = .discarding
        body = nil
        write(failure.response, keepAlive: false, context: context)
    }

    private func write(_ response: APIResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        // A client that hung up while its command ran gets nothing.
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Server", value: Self.serverName)
        headers.add(name: "Content-Type", value: "application/json")
        if response.status != .noContent {
            headers.add(name: "Content-Length", value: String(response.body.count))
        }
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
