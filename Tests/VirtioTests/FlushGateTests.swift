import XCTest
@testable import Virtio

final class FlushGateTests: XCTestCase {
    func testAFlushWaitsForTheWritesBeforeItOnly() {
        var gate = FlushGate<String>()
        XCTAssertEqual(gate.admit("idle"), "idle", "no write in flight: the flush goes at once")
        let w0 = gate.writeStarted(), w1 = gate.writeStarted()
        XCTAssertNil(gate.admit("f1"))
        let w2 = gate.writeStarted()
        XCTAssertNil(gate.admit("f2"))
        XCTAssertEqual(gate.writeFinished(w1), [])
        XCTAssertEqual(gate.writeFinished(w0), ["f1"], "w2 came after f1 and does not hold it")
        XCTAssertEqual(gate.writeFinished(w2), ["f2"])
        XCTAssertEqual(gate.admit("f3"), "f3")
    }
}
