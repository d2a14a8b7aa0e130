import Migration
import XCTest

final class ConvergenceTests: XCTestCase {
    let rule = Convergence(downtimeLimitMs: 300, maxIterations: 5, timeoutSeconds: 60)

    func testConvergesWhenThePendingBytesFitTheDowntime() {
        // 100 MB/s: 30 MB takes 300 ms.
        XCTAssertEqual(rule.decide(pendingBytes: 30_000_000, bytesPerSecond: 100e6, iteration: 0, elapsedSeconds: 1), .converged)
        XCTAssertEqual(rule.decide(pendingBytes: 30_000_001, bytesPerSecond: 100e6, iteration: 0, elapsedSeconds: 1), .iterate)
        XCTAssertEqual(rule.decide(pendingBytes: 0, bytesPerSecond: 0, iteration: 0, elapsedSeconds: 0), .converged)
        XCTAssertEqual(Convergence.estimatedDowntimeMs(pendingBytes: 1, bytesPerSecond: 0), .infinity)
    }

    func testWithinTheTargetItGoesOnWhileEachPassHalvesTheRest() {
        // 1 GB/s: 20 MB = 20 ms, within 300 ms, but half of the 256 MB the previous pass sent: once more.
        XCTAssertEqual(rule.decide(pendingBytes: 20_000_000, bytesPerSecond: 1e9, iteration: 1, elapsedSeconds: 1,
                                   previousBytes: 256_000_000), .iterate)
        XCTAssertEqual(rule.decide(pendingBytes: 20_000_000, bytesPerSecond: 1e9, iteration: 1, elapsedSeconds: 1,
                                   previousBytes: 30_000_000), .converged, "less than halved: the guest keeps up, stop")
        XCTAssertEqual(rule.decide(pendingBytes: 900_000, bytesPerSecond: 1e9, iteration: 2, elapsedSeconds: 1,
                                   previousBytes: 20_000_000), .converged, "under a millisecond: not worth a pass")
        XCTAssertEqual(rule.decide(pendingBytes: 20_000_000, bytesPerSecond: 1e9, iteration: 5, elapsedSeconds: 1,
                                   previousBytes: 256_000_000), .converged, "no iterations left: stop within the target")
        XCTAssertEqual(rule.decide(pendingBytes: 20_000_000, bytesPerSecond: 1e9, iteration: 1, elapsedSeconds: 60,
                                   previousBytes: 256_000_000), .converged, "no time left: stop within the target")
    }

    func testIterationAndTimeBudgets() {
        guard case let .exhausted(why) = rule.decide(pendingBytes: 1 << 30, bytesPerSecond: 1e6, iteration: 5, elapsedSeconds: 1) else {
            return XCTFail("the iteration budget is spent")
        }
        XCTAssertTrue(why.contains("after 5 memory iterations") && why.contains("downtime_ms=300"), why)
        guard case let .exhausted(late) = rule.decide(pendingBytes: 1 << 30, bytesPerSecond: 1e6, iteration: 1, elapsedSeconds: 60) else {
            return XCTFail("the time budget is spent")
        }
        XCTAssertTrue(late.contains("timeout_s=60"), late)
    }

    func testBandwidthIsBytesOverPassTime() {
        var meter = BandwidthMeter()
        XCTAssertEqual(meter.bytesPerSecond, 0)
        meter.record(bytes: 100, seconds: 1)
        meter.record(bytes: 300, seconds: 1)
        XCTAssertEqual(meter.bytesPerSecond, 200)
    }

    func testAutoConvergeStartsAfterTwoSlowPassesAndStepsUpToTheCap() {
        var rule = AutoConverge()
        XCTAssertNil(rule.record(dirtiedBytes: 60, sentBytes: 100), "the first pass without headway only counts")
        XCTAssertEqual(rule.record(dirtiedBytes: 60, sentBytes: 100), 20)
        XCTAssertEqual(rule.record(dirtiedBytes: 51, sentBytes: 100), 30)
        XCTAssertNil(rule.record(dirtiedBytes: 50, sentBytes: 100), "half is headway enough: the throttle stays")
        XCTAssertEqual(rule.percent, 30)
        var steps: [Int] = []
        while let next = rule.record(dirtiedBytes: 1 << 30, sentBytes: 1 << 20) { steps.append(next) }
        XCTAssertEqual(steps, [40, 50, 60, 70, 80, 90, 99])
        XCTAssertEqual(rule.percent, AutoConverge.maxPercent)
    }

    func testAutoConvergeNeedsTheSlowPassesInARow() {
        var rule = AutoConverge()
        XCTAssertNil(rule.record(dirtiedBytes: 90, sentBytes: 100))
        XCTAssertNil(rule.record(dirtiedBytes: 10, sentBytes: 100))
        XCTAssertNil(rule.record(dirtiedBytes: 90, sentBytes: 100))
        XCTAssertEqual(rule.record(dirtiedBytes: 90, sentBytes: 100), 20)
        var idle = AutoConverge()
        for _ in 0..<3 { XCTAssertNil(idle.record(dirtiedBytes: 0, sentBytes: 0), "a pass with nothing to send is headway") }
    }
}
