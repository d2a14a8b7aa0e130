import Foundation
import TestSupport
import XCTest

/// What the end-to-end migration tests check on a peer, from its events and its guest's console.
extension LivePeers.Peer {
    /// The properties of every `migration-failed` event so far.
    var failures: [[String: String]] {
        events.filter { $0["event"] as? String == "migration-failed" }.map { $0["properties"] as? [String: String] ?? [:] }
    }

    /// Waits for the `count`-th `migration-failed` event; returns its error.
    func waitForFailure(count: Int, timeout: TimeInterval = 30) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let all = failures
            if all.count >= count { return all[count - 1]["error"] ?? "" }
            usleep(20_000)
        }
        throw LiveTestError("no migration-failed event #\(count) within \(timeout)s")
    }

    /// The properties of every `migration-memory-iteration` event so far.
    var iterations: [[String: String]] {
        events.filter { $0["event"] as? String == "migration-memory-iteration" }.map { $0["properties"] as? [String: String] ?? [:] }
    }

    /// The source guest still runs after a failed migration: its TICKs advance, its memory verifies, and the
    /// VMM says Running.
    func assertStillRunning(file: StaticString = #filePath, line: UInt = #line) throws {
        let before = process.ticks.last ?? 0
        process.skipExisting()
        let next = Int(try process.waitFor(#"^TICK (\d+) "#, timeout: 5)[1])!
        XCTAssertGreaterThan(next, before, file: file, line: line)
        try process.assertHealthy(rebootAllowed: true, file: file, line: line)
        let info = try api.get("vm.info").json as? [String: Any]
        XCTAssertEqual(info?["state"] as? String, "Running", file: file, line: line)
    }

    /// This destination continues the guest exactly where `source` left it: the next TICK, no reboot, memory
    /// intact, and a running VM of `memory` bytes.
    func assertContinues(after source: LivePeers.Peer, memory: Int = 256 << 20,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let last = try XCTUnwrap(source.process.ticks.last, file: file, line: line)
        let next = Int(try process.waitFor(#"^TICK (\d+) "#, timeout: 10)[1])!
        XCTAssertEqual(next, last + 1, "TICKs continue where the source stopped", file: file, line: line)
        try process.assertHealthy(file: file, line: line)
        let info = try XCTUnwrap(try api.get("vm.info").json as? [String: Any], file: file, line: line)
        XCTAssertEqual(info["state"] as? String, "Running", file: file, line: line)
        XCTAssertEqual(info["memory_actual_size"] as? Int, memory, file: file, line: line)
    }
}

extension LivePeers {
    /// A destination receiving on `url`, and a proxy at `<dir>/slow` that forwards to it at `bytesPerSecond`:
    /// the slow link the fault tests migrate over.
    struct SlowLink {
        let destination: Peer
        let receive: PendingReceive
        let url: String
        let slowURL: String
        let proxy: ThrottledProxy
    }

    func slowLink(bytesPerSecond: Int) throws -> SlowLink {
        let destination = try destination()
        let url = unixURL()
        let receive = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        let slow = dir.file("slow")
        let proxy = try ThrottledProxy(listen: slow, forwardTo: String(url.dropFirst(5)), bytesPerSecond: bytesPerSecond)
        return SlowLink(destination: destination, receive: receive, url: url, slowURL: "unix:\(slow)", proxy: proxy)
    }
    /// Migrates the guest of `source` into `destination` (a new VMM when nil) receiving on `url`, and checks
    /// that both sides say it worked: the receive answers 204 and the source VMM exits 0. The source sends to
    /// `via` when given (a proxy in front of `url`); `options` are more JSON members for vm.send-migration.
    /// Returns the destination and the source's `migration-finished` properties.
    func migrate(_ source: Peer, into destination: Peer? = nil, to url: String, via: String? = nil, options: String = "",
                 file: StaticString = #filePath, line: UInt = #line) throws -> (Peer, [String: String]) {
        let destination = try destination ?? self.destination()
        let receive = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        // The destination keeps answering while it waits for the source.
        XCTAssertEqual(try destination.api.get("vmm.ping").status, 200, file: file, line: line)
        XCTAssertEqual(try destination.api.get("vm.info").status, 404, file: file, line: line)
        let busy = try destination.api.put("vm.restore", #"{"source_url":"file:///nonexistent"}"#)
        XCTAssertEqual(busy.status, 500, file: file, line: line)
        XCTAssertTrue(busy.body.contains("A migration is being received"), busy.body, file: file, line: line)

        let sent = try source.api.put("vm.send-migration", #"{"destination_url":"\#(via ?? url)"\#(options)}"#)
        XCTAssertEqual(sent.status, 204, sent.body, file: file, line: line)
        let received = try receive.wait()
        XCTAssertEqual(received.status, 204, received.body, file: file, line: line)
        XCTAssertEqual(source.process.waitForExit(timeout: 10), 0, "the source VMM exits once its VM has moved",
                       file: file, line: line)
        // The destination's account: when it resumed the guest after telling the source Ok.
        let arrived = try destination.waitForEvent("migration-received", timeout: 5)
        XCTAssertNotNil(arrived["resumed_after_ok_ms"].flatMap(Double.init), "\(arrived)", file: file, line: line)
        let finished = try source.waitForEvent("migration-finished", timeout: 1)
        // One host clock: the guest restarted here after it stopped there, and before the source heard so.
        let paused = try XCTUnwrap(finished["paused_at_us"].flatMap(Int64.init), "\(finished)", file: file, line: line)
        let resumed = try XCTUnwrap(arrived["resumed_at_us"].flatMap(Int64.init), "\(arrived)", file: file, line: line)
        let sourceDowntime = try XCTUnwrap(finished["downtime_ms"].flatMap(Double.init), file: file, line: line)
        XCTAssertGreaterThan(resumed, paused, file: file, line: line)
        XCTAssertLessThanOrEqual(Double(resumed - paused) / 1000, sourceDowntime + 1, "\(finished) \(arrived)", file: file, line: line)
        return (destination, finished)
    }
}
