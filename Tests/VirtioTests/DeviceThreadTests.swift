import Hypervisor
import XCTest
@testable import Virtio

final class DeviceThreadTests: XCTestCase {
    func testHandlersRunOnTheThreadAndPauseWaitsForTheRunningHandler() throws {
        let event = try EventFD()
        let seen = LockedCounter()
        let resumed = LockedCounter()
        let thread = try DeviceThread(name: "test-device", onResume: { resumed.add() })
        try thread.watch(event.fd) { _ in
            _ = try? event.read()
            usleep(20_000)
            seen.add()
        }
        thread.start()
        try event.write()
        usleep(5_000)
        thread.pause()
        XCTAssertEqual(seen.value, 1, "pause returned only after the handler finished")
        try event.write()
        usleep(30_000)
        XCTAssertEqual(seen.value, 1, "nothing runs while paused")
        thread.resume()
        let deadline = Date().addingTimeInterval(2)
        while seen.value < 2 && Date() < deadline { usleep(1000) }
        XCTAssertEqual(seen.value, 2, "the notification that arrived while paused is served after resume")
        XCTAssertEqual(resumed.value, 1)
        thread.stop()
        thread.stop()
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
