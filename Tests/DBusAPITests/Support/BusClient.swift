import Foundation
import TestSupport
import XCTest

/// `busctl` (systemd) calling the D-Bus API on a private bus: a client we did not write.
struct BusClient {
    static let service = "org.cloudhypervisor.Test"
    static let path = "/org/cloudhypervisor/DBusApi1"
    static let interface = "org.cloudhypervisor.DBusApi1"

    let busctl: String
    let address: String
    var service = BusClient.service
    var path = BusClient.path

    init(bus: PrivateBus, file: StaticString = #filePath, line: UInt = #line) throws {
        busctl = try Require.tool("busctl", file: file, line: line)
        address = bus.address
    }

    /// One method call's outcome as busctl reports it.
    struct Reply {
        let result: CommandResult
        var succeeded: Bool { result.status == 0 }
        /// The returned string (`--json=short` prints `{"type":"s","data":["…"]}`), nil for a void reply.
        var string: String? {
            guard let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else { return nil }
            return (object["data"] as? [Any])?.first as? String
        }
        /// The returned string parsed as JSON.
        var json: Any? { string.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } }
        /// A D-Bus error's message (busctl prints "Call failed: <message>").
        var errorMessage: String? {
            guard !succeeded else { return nil }
            let text = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return text.hasPrefix("Call failed: ") ? String(text.dropFirst("Call failed: ".count)) : text
        }
        /// The error message read as the REST error body it carries.
        var errorChain: [String]? {
            errorMessage.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
        }
    }

    /// Calls `method` of org.cloudhypervisor.DBusApi1 (with one JSON string argument if given).
    func call(_ method: String, _ argument: String? = nil, interface: String = BusClient.interface) throws -> Reply {
        Reply(result: try start(method, argument, interface: interface).finish())
    }

    /// Starts a call without waiting for its reply.
    func start(_ method: String, _ argument: String? = nil, interface: String = BusClient.interface) throws -> RunningCommand {
        var arguments = ["--address=\(address)", "--json=short", "--timeout=120", "call", service, path, interface, method]
        if let argument { arguments += ["s", argument] }
        return try RunningCommand(busctl, arguments)
    }

    /// `busctl introspect` (the table busctl users read) of the API object.
    func introspect() throws -> CommandResult {
        try RunningCommand(busctl, ["--address=\(address)", "introspect", service, path]).finish()
    }

    /// Waits until the service answers VmmPing.
    func waitUntilServed(timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try call("VmmPing").succeeded { return }
            usleep(50_000)
        }
        throw TestFailure("\(service) did not answer VmmPing on \(address) within \(timeout)s")
    }
}

/// `gdbus` (GLib), a second client: it shows the D-Bus error name and introspects as GLib programs do.
struct GDBusClient {
    let gdbus: String
    let address: String

    init(bus: PrivateBus, file: StaticString = #filePath, line: UInt = #line) throws {
        gdbus = try Require.tool("gdbus", file: file, line: line)
        address = bus.address
    }

    func call(_ method: String, _ arguments: [String] = [], interface: String = BusClient.interface) throws -> CommandResult {
        try RunningCommand(gdbus, ["call", "--address", address, "--dest", BusClient.service, "--object-path",
                                   BusClient.path, "--method", "\(interface).\(method)"] + arguments).finish()
    }

    func introspectXML() throws -> CommandResult {
        try RunningCommand(gdbus, ["introspect", "--xml", "--address", address, "--dest", BusClient.service,
                                   "--object-path", BusClient.path]).finish()
    }
}
