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
}
