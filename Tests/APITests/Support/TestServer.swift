import API
import Foundation
import Logging

/// A real `APIServer` on a socket in a fresh temporary directory, answering with a `ScriptedVmm`.
final class TestServer: Sendable {
    let directory: String
    let socket: String
    let vmm = ScriptedVmm()
    let server = APIServer(logger: Logger(label: "api-tests"))

    init() throws {
        directory = NSTemporaryDirectory() + "api-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        socket = directory + "/api.sock"
        try server.start(socket: .path(socket), handler: vmm)
    }

    func connect(timeout: TimeInterval = 10) throws -> RawHTTP {
        try RawHTTP(socket: socket, timeout: timeout)
    }

    /// One request on a fresh connection.
    func call(_ method: String, _ endpoint: String, body: String? = nil) throws -> RawHTTP.Reply {
        try connect().call(method, endpoint, body: body)
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
