import Foundation
import Hypervisor
import XCTest

final class KickTests: XCTestCase {
    func testKickInterruptsASpinningGuest() throws {
        let guest = try RealModeGuest(code: [0xEB, 0xFE]) // jmp $
        let vcpu = guest.vcpu
        let started = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let thread = Thread {
            vcpu.bindToCurrentThread()
            defer { vcpu.unbindThread() }
            started.signal()
            result.set(Result { try vcpu.run() })
            // immediate_exit is still set: the next run returns at once without entering the guest.
            result.setSecond(Result { try vcpu.run() })
            finished.signal()
        }
        thread.start()
        started.wait()
        usleep(50_000) // let it enter KVM_RUN and spin
        let kickedAt = DispatchTime.now()
        vcpu.kick()
        XCTAssertEqual(finished.wait(timeout: .now() + 1), .success, "vCPU did not leave KVM_RUN within 1 s")
        let latency = Double(DispatchTime.now().uptimeNanoseconds - kickedAt.uptimeNanoseconds) / 1e6
        guard case .success(.interrupted)? = result.first else { return XCTFail("got \(String(describing: result.first))") }
        guard case .success(.interrupted)? = result.second else { return XCTFail("got \(String(describing: result.second))") }
        XCTAssertLessThan(latency, 1000)
        vcpu.clearImmediateExit()
    }
}

extension KickTests {
    func testKickBeforeRunWithoutThreadReturnsAtOnce() throws {
        let guest = try RealModeGuest(code: [0xEB, 0xFE]) // jmp $
        guest.vcpu.kick() // no bound thread: only immediate_exit
        guard case .interrupted = try guest.vcpu.run() else { return XCTFail("expected interrupted") }
        guest.vcpu.clearImmediateExit()
        XCTAssertEqual(guest.vcpu.runState.pointee.immediate_exit, 0)
    }
}

/// Hands a vCPU thread's results to the test thread.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var firstValue: Result<VCPUExit, any Error>?
    private var secondValue: Result<VCPUExit, any Error>?
    var first: Result<VCPUExit, any Error>? { lock.withLock { firstValue } }
    var second: Result<VCPUExit, any Error>? { lock.withLock { secondValue } }
    func set(_ r: Result<VCPUExit, any Error>) { lock.withLock { firstValue = r } }
    func setSecond(_ r: Result<VCPUExit, any Error>) { lock.withLock { secondValue = r } }
}
