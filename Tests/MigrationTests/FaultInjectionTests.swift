import Config
import Foundation
@testable import Migration
import TestSupport
import XCTest

/// What happens when a migration fails: the source guest keeps running and stays intact whatever the
/// destination does, and a destination discards a half-received VM and can receive again.
final class FaultInjectionTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    func testSourceSurvivesADestinationFailingAtEachPhase() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:16,counter")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        let expected: [(ScriptedDestination.Fault, String)] = [
            (.closeOnAccept, "closed the connection"),
            (.closeAtConfig, "closed the connection"),
            (.closeDuringMemory, "closed the connection"),
            (.closeAtState, "closed the connection"),
            (.refuseComplete, "the destination refused Complete: scripted refusal"),
        ]
        try peers.assertSourceSurvives(source, faults: expected)
        XCTAssertEqual(source.events.filter { $0["event"] as? String == "migration-finished" }.count, 0)
    }

    func testSourceSurvivesTheDestinationVMMBeingKilled() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=dirty:32:50,counter")
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 20)
        let destination = try peers.destination()
        let url = peers.unixURL()
        _ = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        // A tight downtime target keeps the migration iterating while the destination dies (without
        // auto-converge, whose throttle could otherwise let it finish before the kill).
        let sent = try source.api.put("vm.send-migration",
                                      #"{"destination_url":"\#(url)","downtime_ms":1,"timeout_s":30,"auto_converge":false}"#)
        XCTAssertEqual(sent.status, 204)
        usleep(50_000)
        kill(destination.process.process.processIdentifier, SIGKILL)
        let error = try source.waitForFailure(count: 1)
        XCTAssertTrue(error.contains("closed the connection") || error.contains("Connection refused"), error)
        try source.assertStillRunning()
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5)
    }

    /// Over a 20 MB/s link a guest dirtying 50 MiB/s cannot reach its downtime target: with
    /// timeout_strategy=Cancel the source keeps running, and the destination, told to abandon, discards what
    /// it got and receives the same guest over a fast link afterwards.
    func testNonConvergingMigrationIsCancelledAndTheDestinationCanReceiveAgain() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=dirty:16:50,counter")
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 20)
        let link = try peers.slowLink(bytesPerSecond: 20_000_000)
        let (destination, receive, url) = (link.destination, link.receive, link.url)
        defer { destination.process.stop() }
        let sent = try source.api.put("vm.send-migration", #"{"destination_url":"\#(link.slowURL)","downtime_ms":100,"timeout_s":1}"#)
        XCTAssertEqual(sent.status, 204)
        let error = try source.waitForFailure(count: 1)
        XCTAssertTrue(error.contains("did not converge") && error.contains("timeout_s=1"), error)
        let refused = try receive.wait()
        XCTAssertEqual(refused.status, 500)
        XCTAssertTrue(refused.body.contains("abandoned"), refused.body)
        XCTAssertEqual(try destination.api.get("vm.info").status, 404, "the half-received VM is gone")
        try source.assertStillRunning()
        withExtendedLifetime(link.proxy) {}

        _ = try peers.migrate(source, into: destination, to: url)
        try destination.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5)
        try destination.process.assertHealthy()
    }

    /// Beyond CH: `vm.cancel-migration` stops a migration in flight; the source guest keeps running and
    /// verifies, the destination discards what it got, and a later migration succeeds.
    func testCancelMigrationKeepsTheSourceRunning() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:32,counter")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        let link = try peers.slowLink(bytesPerSecond: 4_000_000)
        let (destination, receive, url) = (link.destination, link.receive, link.url)
        defer { destination.process.stop() }
        XCTAssertEqual(try source.api.put("vm.cancel-migration").status, 500, "nothing to cancel yet")
        XCTAssertEqual(try source.api.put("vm.send-migration", #"{"destination_url":"\#(link.slowURL)"}"#).status, 204)
        // The memory phase lasts seconds through the 4 MB/s proxy; wait for it (a loaded host starts it late).
        var progress = try source.api.get("vm.migration-progress")
        let deadline = Date().addingTimeInterval(15)
        while !progress.body.contains(#""phase":"memory""#), Date() < deadline {
            usleep(50_000)
            progress = try source.api.get("vm.migration-progress")
        }
        XCTAssertTrue(progress.body.contains(#""phase":"memory""#), progress.body)
        let cancelled = try source.api.put("vm.cancel-migration")
        XCTAssertEqual(cancelled.status, 204, cancelled.body)
        let error = try source.waitForFailure(count: 1)
        XCTAssertTrue(error.contains("cancelled by vm.cancel-migration"), error)
        XCTAssertEqual(try receive.wait().status, 500)
        XCTAssertEqual(try destination.api.get("vm.info").status, 404, "the half-received VM is gone")
        try source.assertStillRunning()
        withExtendedLifetime(link.proxy) {}

        _ = try peers.migrate(source, into: destination, to: url)
        try destination.process.assertHealthy()
    }

    /// A source that vanishes mid-stream, and one that speaks nonsense: the destination answers the pending
    /// receive with the reason, discards what it got, and then receives a real migration.
    func testDestinationDiscardsFailedReceivesAndReceivesAgain() throws {
        let peers = try LivePeers()
        let destination = try peers.destination()
        defer { destination.process.stop() }
        let url = peers.unixURL()
        var config = VmConfig()
        config.memory.size = 256 << 20
        config.payload = PayloadConfig(kernel: Paths.checkguest.path, cmdline: "", initramfs: nil, firmware: nil)
        let configJSON = try JSONEncoder().encode(config)

        // 1. Start, Config and half a Memory message, then the source disappears.
        var receive = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        do {
            let link = try Connection.connect(to: MigrationURL(url))
            let client = MigrationClient(connection: link)
            try client.start()
            try client.sendConfig(configJSON)
            let table = RangeTable.encode([PageRange(gpa: 0x100000, length: 1 << 20)])
            try link.write(RequestHeader(.memory, length: UInt64(table.count)).bytes + table + [UInt8](repeating: 7, count: 4096),
                           during: "test")
        }
        var reply = try receive.wait()
        XCTAssertEqual(reply.status, 500)
        XCTAssertTrue(reply.body.contains("closed the connection while receiving guest memory"), reply.body)
        XCTAssertEqual(try destination.api.get("vm.info").status, 404)

        // 2. An unknown command right after Start.
        receive = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        let link = try Connection.connect(to: MigrationURL(url))
        try MigrationClient(connection: link).start()
        try link.write([0x77, 0] + [UInt8](repeating: 0, count: 14), during: "test")
        let answer = try ResponseHeader(decoding: try link.read(count: 16, during: "test"))
        XCTAssertEqual(answer.status, .error)
        reply = try receive.wait()
        XCTAssertEqual(reply.status, 500)
        XCTAssertTrue(reply.body.contains("unknown command 119"), reply.body)

        // 3. A real migration into the same VMM.
        let source = try peers.source(cmdline: "workload=memcheck:16,counter")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        _ = try peers.migrate(source, into: destination, to: url)
        try destination.process.waitFor(#"^TICK "#, timeout: 5)
        try destination.process.assertHealthy()
    }

    /// While the worker is blocked on a stalled destination: lifecycle requests are refused, a guest
    /// reboot cancels the migration (the guest reboots normally), and vmm.shutdown does not hang.
    func testAStalledMigrationGivesWayToTheGuestAndTheVMM() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=counter", cpus: 1)
        let path = peers.dir.file("stall")
        let stalled = try ScriptedDestination(path: path, fault: .stallAfterConfig)
        defer { stalled.release() }
        XCTAssertEqual(try source.api.put("vm.send-migration", #"{"destination_url":"unix:\#(path)"}"#).status, 204)
        let busy = try source.api.put("vm.pause")
        XCTAssertEqual(busy.status, 500)
        XCTAssertTrue(busy.body.contains("The VM is being migrated"), busy.body)
        XCTAssertEqual(try source.api.get("vm.info").status, 200)

        source.process.send("reboot\n")
        let error = try source.waitForFailure(count: 1, timeout: 10)
        XCTAssertTrue(error.contains("cancelled"), error)
        try source.process.waitFor(#"^GUEST-BOOTED "#, timeout: 20)

        let second = peers.dir.file("stall2")
        let stalledAgain = try ScriptedDestination(path: second, fault: .stallAfterConfig)
        defer { stalledAgain.release() }
        XCTAssertEqual(try source.api.put("vm.send-migration", #"{"destination_url":"unix:\#(second)"}"#).status, 204)
        usleep(200_000)
        let begin = Date()
        _ = try? source.api.put("vmm.shutdown")
        XCTAssertNotNil(source.process.waitForExit(timeout: 10))
        XCTAssertLessThan(Date().timeIntervalSince(begin), 5, "shutdown must not wait for the stalled peer's timeout")
    }
}
