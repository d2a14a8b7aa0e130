import Foundation
import TestSupport
import XCTest

/// Our VMM processes for end-to-end migration tests: a source booting the checkguest and destinations
/// started with no VM, all with API sockets and event monitors in one scratch directory.
final class LivePeers {
    let dir: ScratchDirectory

    /// The directory is named after the test, shortened: UNIX socket paths must stay under 108 bytes.
    init(_ name: String = #function) throws {
        dir = try ScratchDirectory(String(name.dropFirst(4).prefix(20)))
    }

    /// The `cloud-hypervisor` built next to this test bundle (the tests may run from any scratch path;
    /// `Paths.product` only looks in `.build`).
    static var vmmPath: String {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("cloud-hypervisor").path
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : Paths.product("cloud-hypervisor").path
    }

    struct Peer {
        let process: GuestProcess
        let api: RESTClient
        let eventsPath: String

        /// Every event written so far, as CH's event monitor records them.
        var events: [[String: Any]] {
            let text = (try? String(contentsOfFile: eventsPath, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "\n\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }

        /// Waits for an event named `name`; returns its properties.
        func waitForEvent(_ name: String, timeout: TimeInterval = 30) throws -> [String: String] {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let event = events.last(where: { $0["event"] as? String == name }) {
                    return event["properties"] as? [String: String] ?? [:]
                }
                usleep(20_000)
            }
            throw LiveTestError("no '\(name)' event within \(timeout)s; events: \(events.map { $0["event"] ?? "" })\n"
                                + process.allOutput.split(separator: "\n").suffix(30).joined(separator: "\n"))
        }
    }

    func vmm(_ name: String, _ arguments: [String]) throws -> Peer {
        let socket = dir.file("\(name).sock"), events = dir.file("\(name).events")
        let process = try GuestProcess(executable: Self.vmmPath,
                                       arguments: ["--api-socket", "path=\(socket)", "--event-monitor", "path=\(events)"] + arguments)
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        return Peer(process: process, api: api, eventsPath: events)
    }

    /// A VMM booting the checkguest with its serial console on stdio.
    func source(cmdline: String, cpus: Int = 2, memory: String = "256M", extra: [String] = []) throws -> Peer {
        let peer = try vmm("source", ["--kernel", Paths.checkguest.path, "--cpus", "boot=\(cpus)", "--memory", "size=\(memory)",
                                      "--serial", "tty", "--console", "off", "--cmdline", cmdline] + extra)
        try peer.process.waitFor(#"^GUEST-BOOTED cpus=\#(cpus) "#, timeout: 20)
        return peer
    }

    func destination(_ name: String = "destination") throws -> Peer {
        try vmm(name, [])
    }

    /// `unix:<dir>/<name>` for a migration socket.
    func unixURL(_ name: String = "migration") -> String { "unix:\(dir.file(name))" }
}

/// `vm.receive-migration` in the background: CH answers it only once the VM has arrived (or failed).
final class PendingReceive: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var reply: RESTClient.Reply?

    init(_ api: RESTClient, url: String) {
        Thread { [self] in
            reply = try? api.put("vm.receive-migration", #"{"receiver_url":"\#(url)"}"#)
            done.signal()
        }.start()
    }

    func wait(timeout: TimeInterval = 60) throws -> RESTClient.Reply {
        guard done.wait(timeout: .now() + timeout) == .success, let reply else {
            throw LiveTestError("vm.receive-migration did not answer within \(timeout)s")
        }
        return reply
    }
}

/// Waits until something listens on a migration URL (`unix:` socket file, or a TCP port in /proc/net).
func waitForListener(_ url: String, timeout: TimeInterval = 10) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if url.hasPrefix("unix:") {
            if FileManager.default.fileExists(atPath: String(url.dropFirst(5))) { return }
        } else if let port = UInt16(url.split(separator: ":").last ?? "") {
            let hex = String(format: ":%04X 00000000:0000 0A", port)
            let v6 = String(format: ":%04X 00000000000000000000000000000000:0000 0A", port)
            let tables = ["/proc/net/tcp", "/proc/net/tcp6"].compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
            if tables.contains(where: { $0.contains(hex) || $0.contains(v6) }) { return }
        }
        usleep(10_000)
    }
    throw LiveTestError("nothing listens on \(url) after \(timeout)s")
}

extension GuestProcess {
    /// The numbers of the TICK lines printed so far.
    var ticks: [Int] {
        allLines.compactMap { line in
            guard line.hasPrefix("TICK ") else { return nil }
            return Int(line.split(separator: " ")[1])
        }
    }

    /// The guest verifies all its memory now: `CHECK ok`, and no bad page, panic or reboot seen so far.
    func assertHealthy(rebootAllowed: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        send("check\n")
        try waitFor(#"^CHECK ok\b"#, timeout: 30)
        let out = allOutput
        XCTAssertFalse(out.contains("CHECK bad"), out, file: file, line: line)
        XCTAssertFalse(out.contains("PANIC"), out, file: file, line: line)
        XCTAssertNil(out.range(of: #"CLOCK jump_ms=-"#, options: .regularExpression), "clock went backwards", file: file, line: line)
        if !rebootAllowed { XCTAssertFalse(out.contains("GUEST-BOOTED"), "the guest must not reboot", file: file, line: line) }
    }
}

struct LiveTestError: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}
