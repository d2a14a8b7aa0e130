import Foundation
import Logging
import Synchronization
import VMM

/// The object at the configured path: answers `Introspect` and the `org.cloudhypervisor.DBusApi1`
/// methods. Each method call becomes a `VmmCommand` whose task runs on the D-Bus thread and replies when
/// the VMM answers, so calls overlap: `VmmPing` and `VmInfo` are answered while a migration runs.
final class APIObject: Sendable {
    private let connection: BusConnection
    private let thread: DBusThread
    private let handler: any VmmCommandHandling
    private let logger: Logger
    /// Method calls whose reply is still owed, so `stop` can wait for them. Atomic because a reply that
    /// comes after the D-Bus thread has ended is built on the VMM's thread.
    private let inFlight = Atomic(0)

    init(connection: BusConnection, thread: DBusThread, handler: any VmmCommandHandling, logger: Logger) {
        self.connection = connection
        self.thread = thread
        self.handler = handler
        self.logger = logger
    }

    var isIdle: Bool { inFlight.load(ordering: .relaxed) == 0 }

    /// Whether the message was ours to answer; libdbus answers the rest (UnknownMethod).
    func handle(_ call: Message) -> Bool {
        guard call.isMethodCall, let member = call.member else { return false }
        let interface = call.interface
        if member == "Introspect", interface == nil || interface == Introspection.interface {
            reply(call.methodReturn(Introspection.xml))
            return true
        }
        guard interface == nil || interface == DBusMethod.interface, let method = DBusMethod.named[member] else {
            return false
        }
        guard call.signature == method.inSignature else {
            fail(call, .signature(method: method, got: call.signature))
            return true
        }
        let command: VmmCommand
        switch method.command(from: call) {
        case let .success(decoded): command = decoded
        case let .failure(failure): fail(call, .deserialize(failure)); return true
        }
        logger.debug("D-Bus call \(member)")
        inFlight.add(1, ordering: .relaxed)
        Task(executorPreference: thread) {
            let result = await self.handler.request(command)
            self.answer(call, method: method, with: result)
            self.inFlight.subtract(1, ordering: .relaxed)
        }
        return true
    }

    private func answer(_ call: Message, method: DBusMethod, with result: Result<VmmResponse, VmmError>) {
        switch result {
        case let .success(response):
            guard method.returnsString else { return reply(call.methodReturn()) }
            let body: Data?
            do {
                body = try APIJSON.body(of: response)
            } catch {
                return fail(call, DBusFailure(name: DBusFailure.failed, chain: ["Internal Server Error", "Cannot encode the \(method.name) response"]))
            }
            // CH's Optional<String> sends "" where REST answers 204.
            reply(call.methodReturn(body.map { String(decoding: $0, as: UTF8.self) } ?? ""))
        case let .failure(error):
            fail(call, .vmm(error))
        }
    }

    private func fail(_ call: Message, _ failure: DBusFailure) {
        logger.debug("D-Bus call \(call.member ?? "?") failed: \(failure.chain)")
        reply(call.errorReply(name: failure.name, text: failure.message))
    }

    private func reply(_ message: Message?) {
        guard let message else { return logger.error("D-Bus API: out of memory building a reply") }
        connection.send(message)
    }
}
