import Foundation
import TestSupport
import XCTest

/// Auto-converge on real KVM, over UNIX sockets (direct, or through a slower ThrottledProxy), with what the
/// checkguest prints on its console as the verdict: pages intact, TICKs going on, how fast its `counter` ran.
final class AutoConvergeTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    /// `unix:` URL of a proxy in front of `url` that carries `bytesPerSecond`.
    private func slowLink(_ peers: LivePeers, to url: String, name: String, bytesPerSecond: Int = 100_000_000)
        throws -> (url: String, proxy: ThrottledProxy) {
        let path = peers.dir.file(name)
        return ("unix:\(path)", try ThrottledProxy(listen: path, forwardTo: String(url.dropFirst(5)), bytesPerSecond: bytesPerSecond))
    }

    private func report(_ what: String, _ peer: LivePeers.Peer, _ finished: [String: String]) {
        let throttles = peer.iterations.map { $0["throttle_percent"] ?? "?" }
        print("\(what): total \(finished["total_ms"] ?? "?") ms, downtime \(finished["downtime_ms"] ?? "?") ms, "
              + "\(finished["transferred_bytes"] ?? "?") bytes, throttle per dirty pass [\(throttles.joined(separator: ","))] %")
    }

    /// 1 GiB, 256 MiB rewritten at 200 MiB/s. Over a 100 MB/s link, without auto-converge, the rest never fits:
    /// timeout_s=1 with Cancel gives up and the source guest runs on, intact. Over a direct socket the same
    /// guest then moves with auto-converge on (the default) and continues on the destination, every page intact.
    func testDirty200FailsWithoutAutoConvergeOnASlowLinkThenMoves() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=dirty:256:200,counter", memory: "1G")
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 30)
        let destination = try peers.destination()
        defer { destination.process.stop() }
        let url = peers.unixURL()

        let receive = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        let slow = try slowLink(peers, to: url, name: "slow")
        let sent = try source.api.put("vm.send-migration",
                                      #"{"destination_url":"\#(slow.url)","timeout_s":1,"auto_converge":false}"#)
        XCTAssertEqual(sent.status, 204, sent.body)
        let error = try source.waitForFailure(count: 1)
        XCTAssertTrue(error.contains("did not converge") && error.contains("timeout_s=1"), error)
        XCTAssertEqual(try receive.wait().status, 500)
        let progress = try XCTUnwrap(try source.api.get("vm.migration-progress").json as? [String: Any])
        XCTAssertEqual(progress["throttle_percent"] as? Int, 0, "auto_converge=false never throttles")
        try source.assertStillRunning()
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5)
        withExtendedLifetime(slow.proxy) {}

        let (_, finished) = try peers.migrate(source, into: destination, to: url)
        try destination.assertContinues(after: source, memory: 1 << 30)
        for _ in 0..<2 { try destination.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5) }
        report("1 GiB, dirty:256:200, direct UNIX socket", source, finished)
    }

    /// 1 GiB, 256 MiB rewritten at 50 MiB/s next to 64 MiB verified continuously: moves with auto-converge on.
    func testDirty50WithMemcheckMoves() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=dirty:256:50,memcheck:64,counter", memory: "1G")
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 30)
        try source.process.waitFor(#"^MEMCHECK .*\bbad=0\b"#, timeout: 5)
        let (destination, finished) = try peers.migrate(source, to: peers.unixURL())
        defer { destination.process.stop() }
        try destination.assertContinues(after: source, memory: 1 << 30)
        try destination.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5)
        try destination.process.waitFor(#"^MEMCHECK .*\bbad=0\b"#, timeout: 5)
        report("1 GiB, dirty:256:50 + memcheck:64, direct UNIX socket", source, finished)
    }

    /// A guest writing as fast as it can over a 50 MB/s link, with a downtime target it cannot meet: the
    /// throttle climbs and the guest's counter slows down; a cancel lifts it (the counter is back to full
    /// speed). Then, with the default target and a 100 MB/s link, auto-converge carries the guest over.
    func testThrottleClimbsIsLiftedOnCancelAndCarriesTheGuestOver() throws {
        let peers = try LivePeers()
        let source = try peers.source(cmdline: "workload=dirty:32:0,counter")
        try source.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 20)
        let before = try counterSpeed(source, intervals: 1)
        let destination = try peers.destination()
        defer { destination.process.stop() }
        let url = peers.unixURL()

        let receive = PendingReceive(destination.api, url: url)
        try waitForListener(url)
        let slow = try slowLink(peers, to: url, name: "slow", bytesPerSecond: 50_000_000)
        XCTAssertEqual(try source.api.put("vm.send-migration", #"{"destination_url":"\#(slow.url)","downtime_ms":1}"#).status, 204)
        try waitForThrottle(source, atLeast: 60)
        // Passes of 32 MiB take ≈ 0.7 s here: over the next TICK interval the throttle stays below the 99 %
        // at which even this guest might fit into 1 ms.
        let throttled = try counterSpeed(source, intervals: 1)
        XCTAssertEqual(try source.api.put("vm.cancel-migration").status, 204)
        XCTAssertTrue(try source.waitForFailure(count: 1).contains("cancelled"))
        XCTAssertEqual(try receive.wait().status, 500)
        let lifted = try counterSpeed(source, intervals: 2)
        print("counter on CPU 1 (increments per guest second; host cores the VMM used): \(before) before, "
              + "\(throttled) throttled, \(lifted) after the cancel")
        // Only a host with cores to spare shows it: on a busy one the guest gets less than the throttle allows anyway.
        if lifted.cores > 1.5 {
            XCTAssertGreaterThan(lifted.rates.max()!, throttled.rates[0] * 2, "a cancelled migration leaves the guest unthrottled")
        } else {
            print("the host is too busy to compare the counter's speed with and without the throttle")
        }
        try source.assertStillRunning()
        withExtendedLifetime(slow.proxy) {}

        let fast = try slowLink(peers, to: url, name: "fast", bytesPerSecond: 100_000_000)
        let (_, finished) = try peers.migrate(source, into: destination, to: url, via: fast.url)
        withExtendedLifetime(fast.proxy) {}
        XCTAssertGreaterThan(Int(finished["throttle_percent"] ?? "") ?? 0, 0, "auto-converge was needed: \(finished)")
        try destination.assertContinues(after: source)
        for _ in 0..<2 { try destination.process.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5) }
        report("256 MiB, dirty:32:0, 100 MB/s link", source, finished)
    }

    /// Waits until the source's progress reports a throttle of at least `percent`.
    private func waitForThrottle(_ source: LivePeers.Peer, atLeast percent: Int, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try source.api.get("vm.migration-progress").json as? [String: Any] ?? [:]
            if (last["throttle_percent"] as? Int ?? 0) >= percent { return }
            XCTAssertNotEqual(last["phase"] as? String, "failed", "\(last)")
            usleep(50_000)
        }
        throw LiveTestError("the throttle did not reach \(percent) % within \(timeout)s: \(last)")
    }

    /// CPU 1's `counter` increments per guest second over each of the next `intervals` full TICK intervals,
    /// and the host cores the VMM process used meanwhile (≈ 2 when both vCPUs spin on an otherwise idle host).
    private func counterSpeed(_ peer: LivePeers.Peer, intervals: Int) throws -> CounterSpeed {
        peer.process.skipExisting()
        let ticks = try (0...intervals).map { _ in
            let tick = try peer.process.waitFor(#"^TICK \d+ t_ms=(\d+) .*\bctr=\d+,(\d+)"#, timeout: 5)
            return (ms: Double(tick[1])!, count: Double(tick[2])!, cpu: try cpuSeconds(peer), wall: Date())
        }
        return CounterSpeed(rates: zip(ticks, ticks.dropFirst()).map { ($1.count - $0.count) / ($1.ms - $0.ms) * 1000 },
                            cores: (ticks.last!.cpu - ticks[0].cpu) / ticks.last!.wall.timeIntervalSince(ticks[0].wall))
    }

    private struct CounterSpeed: CustomStringConvertible {
        let rates: [Double]
        let cores: Double
        var description: String { "\(rates.map { Int($0) }) (\(String(format: "%.2f", cores)) cores)" }
    }

    /// User + system CPU seconds of the peer's VMM process so far, all threads (/proc/PID/stat).
    private func cpuSeconds(_ peer: LivePeers.Peer) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(peer.process.process.processIdentifier)/stat", encoding: .utf8)
        // After "(comm)": state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
