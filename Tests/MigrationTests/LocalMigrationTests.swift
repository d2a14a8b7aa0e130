import Foundation
import TestSupport
import XCTest

/// Local migration (`local=true`) between two real VMM processes on KVM: a guest with `shared=on` memory
/// moves without its RAM being copied, and every refusal or failure leaves it running on the source.
final class LocalMigrationTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    private let local = #","local":true"#

    func testGuestMovesWithoutItsMemoryBeingCopied() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:32,counter", memory: "256M,shared=on")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        try source.process.waitFor(#"^TICK "#, timeout: 5)
        let (destination, finished) = try peers.migrate(source, to: peers.unixURL(), options: local)
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
        let bytes = try XCTUnwrap(Int(finished["transferred_bytes"] ?? ""))
        XCTAssertLessThan(bytes, 1 << 20, "only headers, the fd table and the state travel: \(finished)")
        XCTAssertEqual(finished["data_pages"], "0")
        XCTAssertEqual(finished["iterations"], "0")
        let started = try source.waitForEvent("migration-started", timeout: 1)
        XCTAssertEqual(started["local"], "true")
        print("local migration over UNIX: total \(finished["total_ms"] ?? "?") ms, downtime \(finished["downtime_ms"] ?? "?") ms, \(bytes) bytes")

        // The migrated VM owns the memfds now: it can move on the same way.
        let (next, again) = try peers.migrate(destination, into: try peers.destination("second"), to: peers.unixURL("second"),
                                             options: local)
        defer { next.process.stop() }
        try next.assertContinues(after: destination)
        print("second local hop: downtime \(again["downtime_ms"] ?? "?") ms")
    }

    func testLocalMigrationIsRefusedWithoutSharedMemoryOrOverTCP() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:16,counter")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        var refused = try source.api.put("vm.send-migration", #"{"destination_url":"\#(peers.unixURL())"\#(local)}"#)
        XCTAssertEqual(refused.status, 400, refused.body)
        XCTAssertTrue(refused.body.contains("local migration needs --memory shared=on"), refused.body)
        try source.assertStillRunning()
        source.process.stop()

        let shared = try LivePeers("testLocalRefusedOverTCP")
        let sharedSource = try shared.source(cmdline: "workload=memcheck:16,counter", memory: "256M,shared=on")
        defer { sharedSource.process.stop() }
        refused = try sharedSource.api.put("vm.send-migration", #"{"destination_url":"tcp:127.0.0.1:\#(try freePort())"\#(local)}"#)
        XCTAssertEqual(refused.status, 400, refused.body)
        XCTAssertTrue(refused.body.contains("local option is only supported with UNIX sockets"), refused.body)
        try sharedSource.assertStillRunning()
        XCTAssertTrue(sharedSource.failures.isEmpty, "nothing was started")
    }

    /// A destination that dies or refuses at each step, the memory fds in hand included: the source resumes
    /// the guest on its own, untouched RAM every time.
    func testSourceSurvivesADestinationFailingAtEachPhase() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:16,counter", memory: "256M,shared=on")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        let expected: [(ScriptedDestination.Fault, String)] = [
            (.closeAtConfig, "closed the connection"),
            (.closeAfterMemoryFd, "closed the connection while waiting for the answer to MemoryFd"),
            (.closeAtState, "closed the connection"),
            (.refuseComplete, "the destination refused Complete: scripted refusal"),
        ]
        try peers.assertSourceSurvives(source, faults: expected, options: local)
        // And after all that, a real local migration still works.
        let (destination, _) = try peers.migrate(source, to: peers.unixURL(), options: local)
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
    }
}
