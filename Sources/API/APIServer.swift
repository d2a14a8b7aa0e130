import Glibc
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import VMM

/// Cloud Hypervisor's REST API: HTTP/1.1 on a UNIX stream socket, each request turned into a
/// `VmmCommand` for the handler (the VMM's control loop).
///
/// All connections share one event-loop thread, which never waits for the VMM: a command's task is
/// suspended until the VMM's thread answers, so `vmm.ping` is answered while another connection's
/// command is still running. Nothing runs on Swift's cooperative pool.
///
/// ```swift
/// let api = APIServer(logger: logger)
/// try api.start(socket: apiSocket ?? .default, handler: vmm)
/// let code = vmm.waitForExit()
/// api.stop()          // flushes owed responses (vmm.shutdown's 200), removes the socket file
/// ```
public final class APIServer: Sendable {
    private struct Running: Sendable {
        let channel: any Channel
        let file: UnixSocket?
        let connections: Connections
    }

    /// The loop of every API server in the process. It is never shut down, so a command that completes
    /// after `stop()` still finds a live loop to hand its (discarded) answer to.
    private static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private static let backlog: Int32 = 256
    /// How long `stop()` lets connections finish the responses they owe.
    private static let drainTimeout = TimeAmount.seconds(2)

    private let running = Mutex<Running?>(nil)
    private let logger: Logger

    public init(logger: Logger = Logger(label: "cloud-hypervisor.api")) {
        self.logger = logger
    }

    /// Starts serving `socket`. Throws `APIServerError` when the socket cannot be bound (see its cases),
    /// or NIO's error when the event loop refuses it. Not to be called on the server's event loop.
    public func start(socket: APISocket, handler: any VmmCommandHandling) throws {
        try running.withLock { running in
            guard running == nil else { throw APIServerError.alreadyStarted }
            let file: UnixSocket?
            let fd: Int32
            switch socket {
            case let .path(path):
                file = try UnixSocket.bind(path: path)
                fd = file!.fd
            case let .fd(inherited):
                try UnixSocket.validate(fd: inherited)
                file = nil
                fd = inherited
            }
            // Listen here, where a failure is ours to report: NIO's own listen must not fail.
            guard listen(fd, Self.backlog) == 0 else {
                let code = errno
                close(fd)
                file?.remove()
                throw file.map { APIServerError.cannotBind(path: $0.path, errno: code) }
                    ?? APIServerError.invalidDescriptor(fd: fd, reason: "cannot listen: \(errnoText(code))")
            }

            let connections = Connections(eventLoop: Self.group.next())
            let router = Router(handler: handler)
            let executor = EventLoopTaskExecutor(eventLoop: connections.eventLoop)
            let logger = self.logger
            let channel: any Channel
            do {
                channel = try ServerBootstrap(group: connections.eventLoop)
                    .serverChannelOption(.backlog, value: Self.backlog)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let pipeline = channel.pipeline.syncOperations
                            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true,
                                                                     withErrorHandling: false)
                            try pipeline.addHandler(HTTPConnectionHandler(router: router, executor: executor,
                                                                          logger: logger))
                            connections.insert(channel)
                        }
                    }
                    .withBoundSocket(fd)
                    .wait()
            } catch {
                file?.remove()
                throw error
            }
            running = Running(channel: channel, file: file, connections: connections)
            logger.info("API server listening on \(file?.path ?? "fd \(fd)")")
        }
    }

    /// Stops accepting, lets each connection finish the response it owes (at most `drainTimeout`), closes
    /// them and removes the socket file. Blocks the caller; not to be called on the server's event loop.
    public func stop() {
        guard let server = running.withLock({ running in defer { running = nil }; return running }) else { return }
        let loop = server.connections.eventLoop
        let drained = loop.flatSubmit {
            server.channel.close(promise: nil)
            return server.connections.quiesce(forcingAfter: Self.drainTimeout)
        }
        try? drained.wait()
        server.file?.remove()
        logger.info("API server stopped")
    }
}
