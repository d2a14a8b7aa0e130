import Foundation
import TestSupport
import XCTest

/// The real VMM and a real guest driven over D-Bus with busctl: the whole lifecycle proved by the guest's
/// own markers, the JSON replies, the Event signals, and REST giving the same answers on the same VM.
final class DBusLifecycleTests: XCTestCase {
    private var bus: PrivateBus!
    private var client: BusClient!

    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
        bus = try PrivateBus()
        client = try BusClient(bus: bus)
    }

    override func tearDown() {
        bus?.stop()
    }

    /// CH's docs/api.md body with the checkguest as the kernel, its console on the VMM's stdout.
    static func createBody(cpus: Int = 2, cmdline: String) -> String {
        """
        {"cpus":{"boot_vcpus": \(cpus), "max_vcpus": \(cpus)},
         "memory":{"size": 268435456},
         "payload":{"kernel":"\(Paths.checkguest.path)", "cmdline":"\(cmdline)"},
         "serial":{"mode":"Tty"}, "console":{"mode":"Off"},
         "rng":{"src":"/dev/urandom"}}
        """
    }

    private func state() throws -> String? {
        (try client.call("VmInfo").json as? [String: Any])?["state"] as? String
    }

    /// vm.info over D-Bus and over REST, parsed: they must be the same document.
    private func assertSameInfo(_ rest: RESTClient, file: StaticString = #filePath, line: UInt = #line) throws {
        let dbus = try XCTUnwrap(try client.call("VmInfo").json as? NSDictionary, file: file, line: line)
        let reply = try rest.get("vm.info")
        XCTAssertEqual(reply.status, 200, file: file, line: line)
        let http = try XCTUnwrap(reply.json as? NSDictionary, file: file, line: line)
        XCTAssertEqual(dbus, http, file: file, line: line)
    }

    private func tickCount(_ vmm: GuestProcess) -> Int { vmm.allLines.filter { $0.hasPrefix("TICK ") }.count }

    func testLifecycleOverDBusProvedByTheGuest() throws {
        let dir = try ScratchDirectory()
        let signals = try SignalRecorder(bus: bus, busctl: client.busctl)
        defer { signals.stop() }
        let vmm = try GuestProcess.vmm(on: bus, socket: dir.file("api.sock"))
        defer { vmm.stop() }
        try client.waitUntilServed()
        let rest = RESTClient(socket: dir.file("api.sock"))
        try rest.waitUntilUp()

        let ping = try XCTUnwrap(try client.call("VmmPing").json as? [String: Any])
        XCTAssertEqual(ping["pid"] as? Int, Int(vmm.process.processIdentifier))
        XCTAssertNotNil(ping["version"] as? String)
        XCTAssertEqual(try client.call("VmInfo").errorChain?.first, "Error from API", "no VM yet")

        // create → Created; boot → the guest runs.
        let create = try client.call("VmCreate", Self.createBody(cmdline: "workload=counter"))
        XCTAssertTrue(create.succeeded, create.result.stderr)
        XCTAssertEqual(try state(), "Created")
        try assertSameInfo(rest)
        XCTAssertTrue(try client.call("VmBoot").succeeded)
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 mem_kib=262144"#, timeout: 20)
        XCTAssertEqual(try state(), "Running")
        let info = try XCTUnwrap(try client.call("VmInfo").json as? [String: Any])
        XCTAssertEqual(((info["config"] as? [String: Any])?["cpus"] as? [String: Any])?["boot_vcpus"] as? Int, 2)
        XCTAssertEqual(info["memory_actual_size"] as? Int, 268435456)
        try assertSameInfo(rest)

        // pause: no TICK while paused; resume: they continue in sequence.
        try vmm.waitFor(#"^TICK "#, timeout: 5)
        XCTAssertTrue(try client.call("VmPause").succeeded)
        XCTAssertEqual(try state(), "Paused")
        try assertSameInfo(rest)
        let paused = vmm.allLines.filter { $0.hasPrefix("TICK ") }
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertEqual(tickCount(vmm), paused.count, "TICKs while paused")
        vmm.skipExisting()
        XCTAssertTrue(try client.call("VmResume").succeeded)
        let next = Int(try vmm.waitFor(#"^TICK (\d+) "#, timeout: 5)[1])!
        XCTAssertEqual(next, Int(paused.last!.split(separator: " ")[1])! + 1)

        // snapshot needs a paused VM; the guest carries on after resume.
        let snapshot = dir.file("snapshot")
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        XCTAssertTrue(try client.call("VmPause").succeeded)
        let snap = try client.call("VmSnapshot", #"{"destination_url":"file://\#(snapshot)"}"#)
        XCTAssertTrue(snap.succeeded, snap.result.stderr)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: snapshot).isEmpty, "snapshot files written")
        vmm.skipExisting()
        XCTAssertTrue(try client.call("VmResume").succeeded)
        try vmm.waitFor(#"^TICK "#, timeout: 5)

        // shutdown keeps the config (Created); VmmShutdown replies, then the VMM exits.
        XCTAssertTrue(try client.call("VmShutdown").succeeded)
        XCTAssertEqual(try state(), "Created")
        try assertSameInfo(rest)
        let bye = try client.call("VmmShutdown")
        XCTAssertTrue(bye.succeeded, "the reply arrives before the VMM exits: \(bye.result.stderr)")
        XCTAssertEqual(vmm.waitForExit(timeout: 10), 0)

        // Every lifecycle event arrived as an Event signal, in order, with CH's record; the VMM's own
        // "shutdown" (source vmm) comes last.
        try signals.waitFor("shutdown")
        let deadline = Date().addingTimeInterval(5)
        while signals.events.last?["source"] as? String != "vmm" && Date() < deadline { usleep(50_000) }
        let expected = ["starting", "booting", "booted", "pausing", "paused", "resuming", "resumed",
                        "pausing", "paused", "snapshotting", "snapshotted", "resuming", "resumed", "shutdown", "shutdown"]
        var unseen = expected[...]
        for name in signals.names where name == unseen.first { unseen.removeFirst() }
        XCTAssertTrue(unseen.isEmpty, "missing \(Array(unseen)) in \(signals.names)")
        let sources = signals.events.compactMap { $0["source"] as? String }
        XCTAssertEqual(sources.first, "vmm")
        XCTAssertEqual(sources.last, "vmm")
        for record in signals.events {
            let timestamp = try XCTUnwrap(record["timestamp"] as? [String: Any])
            XCTAssertNotNil(timestamp["secs"] as? Int)
            XCTAssertNotNil(timestamp["nanos"] as? Int)
            XCTAssertTrue(record.keys.contains("properties"))
        }
    }
}
