import Foundation
import Snapshot
import TestSupport
import XCTest

/// `memory_restore_mode=ondemand`: the guest runs on snapshot memory mapped from memory.bin and verifies itself
/// (TICKs continue, its memcheck finds no bad page, `check` passes); the mapped runs are verified in the
/// background. A damaged mapped run is
/// caught by that verification: the guest is paused and cannot be resumed. A copying restore of the same
/// snapshot refuses it before the guest runs.
final class SnapshotOnDemandTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    /// A 256 MiB guest with 32 MiB of incompressible memcheck pages (stored as raw runs); returns the
    /// snapshot directory and the last TICK before the pause.
    private func makeSnapshot(_ dir: ScratchDirectory) throws -> (path: String, lastTick: Int) {
        let snap = dir.file("snap")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let socket = dir.file("src.sock")
        let source = try GuestProcess.checkguest(cpus: 2, memory: "256M", cmdline: "workload=memcheck:32,counter",
                                                 extra: ["--api-socket", "path=\(socket)"])
        defer { source.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        try source.waitFor(#"^MEMSUM "#, timeout: 30)
        try source.waitFor(#"^TICK "#, timeout: 5)
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        let reply = try api.put("vm.snapshot", #"{"destination_url":"file://\#(snap)"}"#)
        XCTAssertEqual(reply.status, 204, reply.body)
        let last = source.allLines.compactMap { $0.hasPrefix("TICK ") ? Int($0.split(separator: " ")[1]) : nil }.last!
        let summary = try SnapshotReader(directory: URL(fileURLWithPath: snap)).memorySummary
        XCTAssertGreaterThan(summary.rawBytes, 24 << 20, "the memcheck pages must be stored as raw runs")
        return (snap, last)
    }

    /// The event monitor's records once one of them is `name`.
    private func waitForEvent(_ name: String, in path: String, timeout: TimeInterval = 30,
                              file: StaticString = #filePath, line: UInt = #line) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        while Date() < deadline {
            text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if text.contains(#""\#(name)""#) { return text }
            usleep(50_000)
        }
        XCTFail("no '\(name)' event within \(timeout) s: \(text)", file: file, line: line)
        return text
    }

    func testGuestRunsOnMappedMemoryAndVerifiesItself() throws {
        let dir = try ScratchDirectory("ondemand")
        let (snap, last) = try makeSnapshot(dir)

        // 1. `--restore …,memory_restore_mode=ondemand`.
        let events = dir.file("events.json")
        let r1 = try GuestProcess.vmm(["--event-monitor", "path=\(events)", "--restore",
                                       "source_url=file://\(snap),memory_restore_mode=ondemand,resume=true"])
        let next = Int(try r1.waitFor(#"^TICK (\d+) "#, timeout: 10)[1])!
        XCTAssertEqual(next, last + 1, "TICKs must continue where the snapshot left them")
        try r1.waitFor(#"^MEMCHECK .*\bbad=0\b"#, timeout: 10)
        r1.send("check\n")
        try r1.waitFor(#"^CHECK ok pages="#, timeout: 60)
        let log = waitForEvent("restore-verified", in: events)
        XCTAssertFalse(log.contains("restore-verification-failed"), log)
        XCTAssertFalse(r1.allOutput.contains("GUEST-BOOTED"), "the restored guest must not reboot")
        r1.stop()

        // 2. REST `vm.restore` with CH's JSON spelling; the guest keeps verifying while it runs.
        let socket = dir.file("r2.sock")
        let r2 = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        let reply = try api.put("vm.restore", #"{"source_url":"file://\#(snap)","memory_restore_mode":"OnDemand","resume":true}"#)
        XCTAssertEqual(reply.status, 204, reply.body)
        try r2.waitFor(#"^TICK \#(last + 1) "#, timeout: 10)
        try r2.waitFor(#"^TICK "#, timeout: 5)
        r2.send("check\n")
        try r2.waitFor(#"^CHECK ok pages="#, timeout: 60)
        r2.stop()
    }

    func testDamagedMappedRunPausesTheGuestAndCopyRefusesIt() throws {
        let dir = try ScratchDirectory("ondemand-damaged")
        let (snap, _) = try makeSnapshot(dir)
        // The largest record is a memcheck chunk: head, padding, 4 MiB of raw pages. Its last byte is raw data.
        let chunk = try XCTUnwrap(try SnapshotReader(directory: URL(fileURLWithPath: snap)).memoryChunks
            .max { $0.recordLength < $1.recordLength })
        let memory = URL(fileURLWithPath: snap + "/memory.bin")
        var bytes = try Data(contentsOf: memory)
        bytes[Int(chunk.fileOffset) + chunk.recordLength - 1] ^= 0x20
        try bytes.write(to: memory)
        let problem = "memory.bin: chunk \(chunk.index) (range \(chunk.range) +0x\(String(chunk.offsetInRange, radix: 16))), run 0: checksum mismatch"

        let events = dir.file("events.json"), socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)", "--event-monitor", "path=\(events)", "--restore",
                                        "source_url=file://\(snap),memory_restore_mode=ondemand,resume=true"])
        defer { vmm.stop() }
        let log = waitForEvent("restore-verification-failed", in: events)
        XCTAssertTrue(log.contains(problem), log)
        try vmm.waitFor(#"^Error: on-demand restore: "#, timeout: 10)
        XCTAssertTrue(vmm.allOutput.contains(problem), vmm.allOutput)
        let api = RESTClient(socket: socket)
        XCTAssertTrue(try api.get("vm.info").body.contains(#""state":"Paused""#))
        let resume = try api.put("vm.resume")
        XCTAssertEqual(resume.status, 500, resume.body)
        XCTAssertTrue(resume.body.contains("does not match the snapshot"), resume.body)

        let copy = try GuestProcess.vmm(["--restore", "source_url=file://\(snap),resume=true"])
        XCTAssertNotEqual(copy.waitForExit(timeout: 30), 0)
        XCTAssertTrue(copy.allOutput.contains(problem), copy.allOutput)
        XCTAssertFalse(copy.allOutput.contains("TICK"), copy.allOutput)
    }
}
