import Foundation
import TestSupport
import XCTest

/// Snapshot and restore with the checkguest verifying itself afterwards: memory checksums hold, TICKs
/// continue from where they were (no reboot), and the guest clock never goes backwards.
final class SnapshotRestoreTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    private func bootGuest(_ dir: ScratchDirectory, cmdline: String, cpus: Int = 2, memory: String = "256M")
        throws -> (GuestProcess, RESTClient) {
        let socket = dir.file("src.sock")
        let guest = try GuestProcess.checkguest(cpus: cpus, memory: memory, cmdline: cmdline,
                                                extra: ["--api-socket", "path=\(socket)"])
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        try guest.waitFor(#"^GUEST-BOOTED cpus=\#(cpus) "#, timeout: 20)
        return (guest, api)
    }

    /// Pauses and snapshots; returns the last TICK number printed before the pause.
    private func pauseAndSnapshot(_ guest: GuestProcess, _ api: RESTClient, to path: String,
                                  durable: Bool = true) throws -> Int {
        let tick = Int(try guest.waitFor(#"^TICK (\d+) "#, timeout: 5)[1])!
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        let option = durable ? "" : #","durable":false"#
        let reply = try api.put("vm.snapshot", #"{"destination_url":"file://\#(path)"\#(option)}"#)
        XCTAssertEqual(reply.status, 204, reply.body)
        let last = guest.allLines.compactMap { line -> Int? in
            guard line.hasPrefix("TICK ") else { return nil }
            return Int(line.split(separator: " ")[1])
        }.last ?? tick
        return last
    }

    /// After a restore: the next TICK continues the sequence, no reboot, memory verifies, clock sane.
    private func assertContinues(_ guest: GuestProcess, after last: Int) throws {
        let next = Int(try guest.waitFor(#"^TICK (\d+) "#, timeout: 10)[1])!
        XCTAssertEqual(next, last + 1, "TICKs must continue where the snapshot left them")
        guest.send("check\n")
        try guest.waitFor(#"^CHECK ok\b"#, timeout: 30)
        let out = guest.allOutput
        XCTAssertFalse(out.contains("GUEST-BOOTED"), "the restored guest must not reboot")
        XCTAssertFalse(out.contains("CHECK bad"), out)
        XCTAssertFalse(out.contains("PANIC"), out)
        XCTAssertNil(out.range(of: #"CLOCK jump_ms=-"#, options: .regularExpression), "clock went backwards: \(out)")
    }

    func testSnapshotRestoreViaCLIAndREST() throws {
        let dir = try ScratchDirectory()
        let snap = dir.file("snap")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let (source, api) = try bootGuest(dir, cmdline: "workload=memcheck:32,counter")
        try source.waitFor(#"^MEMSUM "#, timeout: 20)
        let last = try pauseAndSnapshot(source, api, to: snap)
        kill(source.process.processIdentifier, SIGKILL)
        _ = source.waitForExit(timeout: 5)

        // 1. `cloud-hypervisor --restore`: comes up paused; resume through REST.
        let socket1 = dir.file("r1.sock")
        let r1 = try GuestProcess.vmm(["--api-socket", "path=\(socket1)", "--restore", "source_url=file://\(snap)"])
        let api1 = RESTClient(socket: socket1)
        try api1.waitUntilUp()
        let info = try api1.get("vm.info")
        XCTAssertEqual(info.status, 200)
        XCTAssertTrue(info.body.contains(#""state":"Paused""#), info.body)
        usleep(300_000)
        XCTAssertFalse(r1.allOutput.contains("TICK"), "a restored VM stays paused until resumed")
        XCTAssertEqual(try api1.put("vm.resume").status, 204)
        try assertContinues(r1, after: last)
        r1.stop()

        // 2. REST `vm.restore` into a VMM with no VM, with resume=true; then again (the same snapshot restores repeatedly).
        for round in 2...3 {
            let socket = dir.file("r\(round).sock")
            let r = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
            let rapi = RESTClient(socket: socket)
            try rapi.waitUntilUp()
            let reply = try rapi.put("vm.restore", #"{"source_url":"file://\#(snap)","resume":true}"#)
            XCTAssertEqual(reply.status, 204, reply.body)
            try assertContinues(r, after: last)
            r.stop()
        }
    }

    func testSnapshotOfARestoredVMRestoresToo() throws {
        let dir = try ScratchDirectory()
        let first = dir.file("first"), second = dir.file("second")
        for d in [first, second] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let (source, api) = try bootGuest(dir, cmdline: "workload=memcheck:16,counter")
        try source.waitFor(#"^MEMSUM "#, timeout: 20)
        _ = try pauseAndSnapshot(source, api, to: first)
        source.stop()

        let socket = dir.file("mid.sock")
        let mid = try GuestProcess.vmm(["--api-socket", "path=\(socket)", "--restore", "source_url=file://\(first),resume=true"])
        let midAPI = RESTClient(socket: socket)
        try midAPI.waitUntilUp()
        try mid.waitFor(#"^TICK "#, timeout: 10)
        let last = try pauseAndSnapshot(mid, midAPI, to: second)
        mid.stop()

        let end = try GuestProcess.vmm(["--restore", "source_url=file://\(second),resume=true"])
        try assertContinues(end, after: last)
        end.stop()
    }

    func testNonDurableSnapshotRestoresToo() throws {
        let dir = try ScratchDirectory()
        let snap = dir.file("snap")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let (source, api) = try bootGuest(dir, cmdline: "workload=memcheck:16,counter")
        try source.waitFor(#"^MEMSUM "#, timeout: 20)
        let last = try pauseAndSnapshot(source, api, to: snap, durable: false)
        source.stop()
        let r = try GuestProcess.vmm(["--restore", "source_url=file://\(snap),resume=true"])
        try assertContinues(r, after: last)
        r.stop()
    }

    func testSnapshotWhileDirtyWorkloadRunsOnBothVCPUs() throws {
        let dir = try ScratchDirectory()
        let snap = dir.file("snap")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let (source, api) = try bootGuest(dir, cmdline: "workload=dirty:16:200,dirty:16:200")
        try source.waitFor(#"^DIRTY .*bad=0"#, timeout: 10)
        let last = try pauseAndSnapshot(source, api, to: snap)
        source.stop()
        let r = try GuestProcess.vmm(["--restore", "source_url=file://\(snap),resume=true"])
        try assertContinues(r, after: last)
        for _ in 0..<2 { try r.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5) }
        r.stop()
    }

    func testSnapshotNeedsAPausedVMAndAnEmptyExistingDirectory() throws {
        let dir = try ScratchDirectory()
        let (guest, api) = try bootGuest(dir, cmdline: "workload=idle", cpus: 1)
        defer { guest.stop() }
        let snap = dir.file("snap")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        // Running → 500 with CH's error shape.
        let running = try api.put("vm.snapshot", #"{"destination_url":"file://\#(snap)"}"#)
        XCTAssertEqual(running.status, 500, running.body)
        XCTAssertTrue(running.body.hasPrefix(#"["Error from API""#), running.body)
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        // Missing directory.
        let missing = try api.put("vm.snapshot", #"{"destination_url":"file://\#(dir.file("nope"))"}"#)
        XCTAssertEqual(missing.status, 500, missing.body)
        XCTAssertTrue(missing.body.contains("nope"), missing.body)
        // Works once, then refuses to overwrite.
        XCTAssertEqual(try api.put("vm.snapshot", #"{"destination_url":"file://\#(snap)"}"#).status, 204)
        let again = try api.put("vm.snapshot", #"{"destination_url":"file://\#(snap)"}"#)
        XCTAssertEqual(again.status, 500, again.body)
        // The VM is still intact and resumes.
        XCTAssertEqual(try api.put("vm.resume").status, 204)
        try guest.waitFor(#"^TICK "#, timeout: 5)
    }
}
