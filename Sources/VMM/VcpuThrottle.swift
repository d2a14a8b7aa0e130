import Foundation
import Hypervisor

/// Auto-converge's brake: while set to p %, a timer thread kicks every vCPU at the start of each period and
/// `RunControl` holds them for p % of it, so a guest that dirties memory faster than a migration sends it
/// gets less CPU time.
///
/// Cheaper than pausing each period: one kick per vCPU and no handshake (the timer never waits for the
/// vCPUs to stop; measured on 2 cores, a pause handshake took 0.2–0.9 ms on average and up to 13 ms), and
/// the guest's clock keeps running (`Vm.pause` would hide every hold from it). A held vCPU thread waits on
/// the run control's condition, so a real pause or stop still takes effect at once. The timer thread
/// exists only while the throttle is on. Measured on a checkguest writing memory as fast as it can
/// (2270 MiB/s unthrottled): 20 % → 1780, 50 % → 730–1140, 80 % → 230–310, 95 % → 60–125, 99 % → 15–37 MiB/s.
final class VcpuThrottle: @unchecked Sendable {
    /// Short enough that the guest's timers and console keep going at 99 %, long enough that the kicks
    /// (≈ 10 µs of exit each under KVM-PVM) cost little.
    static let period: Duration = .milliseconds(20)

    private let control: RunControl
    private let vcpus: [VirtualCPU]
    private let cond = NSCondition()
    private var percent = 0
    private var timerRunning = false

    init(control: RunControl, vcpus: [VirtualCPU]) {
        self.control = control
        self.vcpus = vcpus
    }

    /// Sets the throttle (clamped to 0…99). Setting 0 returns once the vCPUs run unthrottled again.
    func set(_ newPercent: Int) {
        cond.lock()
        defer { cond.unlock() }
        percent = min(max(newPercent, 0), 99)
        cond.broadcast()
        if percent > 0, !timerRunning {
            timerRunning = true
            let thread = Thread { [self] in self.run() }
            thread.name = "vcpu-throttle"
            thread.start()
        }
        while percent == 0, timerRunning { cond.wait() }
    }

    private func run() {
        cond.lock()
        defer { cond.unlock() }
        while percent > 0 {
            let start = ContinuousClock.now
            control.throttle(until: start + Self.period * percent / 100)
            for vcpu in vcpus { vcpu.kick() }
            let next = start + Self.period
            while percent > 0, ContinuousClock.now < next {
                _ = cond.wait(until: Date(timeIntervalSinceNow: ContinuousClock.now.duration(to: next).seconds))
            }
        }
        control.throttle(until: nil)
        timerRunning = false
        cond.broadcast()
    }
}
