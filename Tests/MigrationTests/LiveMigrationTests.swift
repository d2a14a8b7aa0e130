import Foundation
import TestSupport
import XCTest

/// Live migration between two real VMM processes on KVM, with the checkguest verifying itself on the
/// destination: memory intact (`CHECK ok`), TICKs continuing without a reboot, the source process gone.
final class LiveMigrationTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    private func report(_ name: String, _ finished: [String: String]) {
        let line = "migration over \(name): total \(finished["total_ms"] ?? "?") ms, downtime \(finished["downtime_ms"] ?? "?") ms, "
            + "\(finished["transferred_bytes"] ?? "?") bytes, \(finished["iterations"] ?? "?") dirty passes"
        print(line)
        XCTAssertNotNil(finished["downtime_ms"].flatMap(Double.init))
    }

    func testIdleGuestOverUnixSocket() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:32,counter")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        try source.process.waitFor(#"^TICK "#, timeout: 5)
        let (destination, finished) = try peers.migrate(source, to: peers.unixURL())
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
        XCTAssertFalse(FileManager.default.fileExists(atPath: peers.dir.file("migration")), "the socket file is removed")
        let events = source.events.compactMap { $0["event"] as? String }
        XCTAssertEqual(events.filter { $0.hasPrefix("migration-") }.first, "migration-started")
        report("UNIX", finished)
    }

    /// A VM restored from the oldest snapshot fixture (made before virtio devices existed: its guest has
    /// none, though its config names the default rng) migrates too: the destination, which built its VM
    /// with the config's devices while memory arrived, finds no virtio sections and builds it again
    /// without them.
    func testAVMRestoredFromAPreVirtioSnapshotMigrates() throws {
        let peers = try LivePeers()
        let fixture = Paths.root.appendingPathComponent("snapshots/fixtures/v1").path
        let source = try peers.vmm("source", ["--restore", "source_url=file://\(fixture),resume=true"])
        try source.process.waitFor(#"^TICK "#, timeout: 10)
        let (destination, finished) = try peers.migrate(source, into: try peers.vmm("destination", ["-v"]), to: peers.unixURL())
        defer { destination.process.stop() }
        let last = try XCTUnwrap(source.process.ticks.last)
        XCTAssertEqual(Int(try destination.process.waitFor(#"^TICK (\d+) "#, timeout: 10)[1]), last + 1)
        try destination.process.assertHealthy()
        XCTAssertTrue(destination.process.allOutput.contains("no virtio devices"), destination.process.allOutput)
        report("UNIX from a restored pre-virtio snapshot", finished)
    }

    func testIdleGuestOverTCPLoopback() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:32,counter")
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        try source.process.waitFor(#"^TICK "#, timeout: 5)
        let (destination, finished) = try peers.migrate(source, to: "tcp:127.0.0.1:\(try freePort())")
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
        // Beyond CH: the destination reports how the migration went.
        let progress = try destination.api.get("vm.migration-progress")
        XCTAssertEqual(progress.status, 200, progress.body)
        let fields = try XCTUnwrap(progress.json as? [String: Any])
        XCTAssertEqual(fields["role"] as? String, "destination")
        XCTAssertEqual(fields["phase"] as? String, "completed")
        XCTAssertGreaterThan(fields["transferred_bytes"] as? Int ?? 0, 32 << 20)
        report("TCP", finished)
    }

    /// Compression over TCP: the checkguest's pages are incompressible by design, so most batches go plain,
    /// its image and tables compress; a guest that keeps writing needs dirty passes. Bad options are
    /// refused up front with 400 and the VM keeps running.
    func testCompressedMigrationOverTCPLoopback() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=memcheck:32,dirty:16:20,counter", extra: ["-v"])
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 20)
        for (options, expected) in [(#""compression":"lz4""#, "unknown compression 'lz4'"),
                                    (#""compression":"zstd","compression_level":99"#, "compression_level 99 is outside"),
                                    (#""compression":"zstd","local":true"#, "compression is not supported with local")] {
            let refused = try source.api.put("vm.send-migration", #"{"destination_url":"\#(peers.unixURL())",\#(options)}"#)
            XCTAssertEqual(refused.status, 400, refused.body)
            XCTAssertTrue(refused.body.contains(expected), refused.body)
        }
        let (destination, finished) = try peers.migrate(source, to: "tcp:127.0.0.1:\(try freePort())",
                                                        options: #","compression":"zstd","downtime_ms":50"#)
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
        try destination.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5)
        XCTAssertEqual(source.events.first { $0["event"] as? String == "migration-started" }
                           .flatMap { ($0["properties"] as? [String: String])?["compression"] }, "zstd")
        // Its image and tables do compress: some frames went as MemoryCompressed.
        try source.process.waitFor(#"migration compression: .* [1-9]\d* batches compressed"#, timeout: 1)
        report("TCP, zstd, memcheck:32 + dirty:16:20", finished)
    }

    /// 64 MiB rewritten at 200 MiB/s while migrating with a tight downtime target: pre-copy iterates on
    /// the dirty log, converges, and not one page is stale on the destination. (At 50 MiB/s a fast first
    /// pass could leave so little dirty that no iteration is needed, and the test would prove nothing.)
    func testDirtyingGuestConverges() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=dirty:64:200,counter")
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 20)
        let (destination, finished) = try peers.migrate(source, to: peers.unixURL(), options: #","downtime_ms":20"#)
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
        for _ in 0..<2 { try destination.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5) }
        XCTAssertGreaterThan(Int(finished["iterations"] ?? "") ?? 0, 0, "dirty passes were needed: \(finished)")
        XCTAssertFalse(source.iterations.isEmpty)
        report("UNIX, dirty:64:200, downtime_ms=20", finished)
    }

    /// The same guest hops through ten VMMs in a row (a migrated VM migrates again): memory verifies and
    /// TICKs continue after every hop.
    func testPingPongTenHops() throws {
        let peers = try LivePeers()
        var current = try peers.source(cmdline: "workload=memcheck:16,counter")
        try current.process.waitFor(#"^MEMSUM "#, timeout: 20)
        try current.process.waitFor(#"^TICK "#, timeout: 5)
        var downtimes: [String] = []
        for hop in 1...10 {
            let url = peers.unixURL("hop\(hop)")
            let next = try peers.destination("hop\(hop)")
            let receive = PendingReceive(next.api, url: url)
            try waitForListener(url)
            XCTAssertEqual(try current.api.put("vm.send-migration", #"{"destination_url":"\#(url)"}"#).status, 204)
            XCTAssertEqual(try receive.wait().status, 204, "hop \(hop)")
            XCTAssertEqual(current.process.waitForExit(timeout: 10), 0, "hop \(hop)")
            downtimes.append(try current.waitForEvent("migration-finished", timeout: 1)["downtime_ms"] ?? "?")
            let last = try XCTUnwrap(current.process.ticks.last)
            let tick = Int(try next.process.waitFor(#"^TICK (\d+) "#, timeout: 10)[1])!
            XCTAssertEqual(tick, last + 1, "hop \(hop)")
            try next.process.assertHealthy()
            current = next
        }
        current.process.stop()
        print("ten hops, downtimes (ms): \(downtimes.joined(separator: ", "))")
    }
}
