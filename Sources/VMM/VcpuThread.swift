import Glibc
import Devices
import Foundation
import Hypervisor
import Logging

/// What a vCPU thread reports to the VM's owner; the VM itself is torn down by the control loop.
public enum VcpuEvent: Sendable, Equatable {
    /// Triple fault: the guest reset itself (as on hardware, the machine restarts).
    case tripleFault(vcpu: UInt32)
    /// KVM could not run the guest any further; the message says why.
    case failed(vcpu: UInt32, message: String)
}

/// Run/pause/stop/throttle coordination between the controllers and all vCPU threads of one VM.
///
/// Controllers block on the condition (never spin: a spinning kicker delays the vCPU's signal by
/// milliseconds on this 2-core machine). Every request is recorded under the lock *before* its kick, and
/// each vCPU thread clears its `immediate_exit` under the lock only after it has looked at the requests,
/// so a kick can never be lost between a check and KVM_RUN.
final class RunControl: @unchecked Sendable {
    enum State { case running, paused, stopping }

    private let cond = NSCondition()
    private var state: State = .running
    private var parked = 0
    private var live = 0
    /// Auto-converge's brake (`VcpuThrottle`): until then, running vCPU threads wait at their checkpoint
    /// instead of entering the guest. A pause or stop ends the wait at once.
    private var throttledUntil: ContinuousClock.Instant?

    /// Called by each vCPU thread before it runs: blocks while paused or throttled; false when it must exit.
    /// `beforeParking` runs (under the lock) before the thread counts as parked: what the vCPU's state must
    /// include before anyone reads it.
    func checkpoint(_ vcpu: VirtualCPU, beforeParking: () -> Void = {}) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while true {
            switch state {
            case .stopping:
                return false
            case .paused:
                beforeParking()
                // Counted once per pause, not per wake-up: re-broadcasting after every wake-up would make
                // parked vCPU threads wake each other forever (each burned ≈ half a core while paused).
                parked += 1
                cond.broadcast()
                while state == .paused { cond.wait() }
                parked -= 1
            case .running:
                let left = throttledUntil.map { ContinuousClock.now.duration(to: $0) } ?? .zero
                guard left > .zero else {
                    vcpu.clearImmediateExit()
                    return true
                }
                _ = cond.wait(until: Date(timeIntervalSinceNow: left.seconds))
            }
        }
    }

    /// Holds running vCPU threads at their checkpoint until `until` (nil: releases them). The caller kicks
    /// the vCPUs afterwards to bring them there.
    func throttle(until: ContinuousClock.Instant?) {
        cond.lock()
        throttledUntil = until
        if until == nil { cond.broadcast() }
        cond.unlock()
    }

    func threadStarted() { cond.lock(); live += 1; cond.unlock() }

    /// Before any thread starts: they will park at their first checkpoint.
    func startPaused() { cond.lock(); state = .paused; cond.unlock() }

    func threadExited() {
        cond.lock()
        live -= 1
        cond.broadcast()
        cond.unlock()
    }

    /// Parks every vCPU thread; returns once all are parked (or exited).
    func pause(kicking vcpus: [VirtualCPU]) {
        cond.lock()
        guard state == .running else { cond.unlock(); return }
        state = .paused
        cond.broadcast() // throttled threads park now, not at the end of their wait
        cond.unlock()
        for vcpu in vcpus { vcpu.kick() }
        cond.lock()
        while parked < live { cond.wait() }
        cond.unlock()
    }

    func resume() {
        cond.lock()
        guard state == .paused else { cond.unlock(); return }
        state = .running
        cond.broadcast()
        cond.unlock()
    }

    /// Makes every vCPU thread leave its loop; returns once all have exited.
    func stop(kicking vcpus: [VirtualCPU]) {
        cond.lock()
        state = .stopping
        cond.broadcast()
        cond.unlock()
        for vcpu in vcpus { vcpu.kick() }
        cond.lock()
        while live > 0 { cond.wait() }
        cond.unlock()
    }
}

/// One OS thread per vCPU running KVM_RUN and dispatching exits to the buses.
///
/// KVM_RUN blocks for as long as the guest runs, so it must never run on Swift's cooperative pool.
final class VcpuThread: @unchecked Sendable {
    let vcpu: VirtualCPU
    private let pio: Bus
    private let mmio: Bus
    private let control: RunControl
    private let onEvent: @Sendable (VcpuEvent) -> Void
    private let logger: Logger
    private var thread: Thread?


    init(vcpu: VirtualCPU, pio: Bus, mmio: Bus, control: RunControl, logger: Logger,
         onEvent: @escaping @Sendable (VcpuEvent) -> Void) {
        self.vcpu = vcpu
        self.logger = logger
        self.pio = pio
        self.mmio = mmio
        self.control = control
        self.onEvent = onEvent
    }

    func start() {
        control.threadStarted()
        let thread = Thread { [self] in self.loop() }
        thread.name = "vcpu\(vcpu.id)"
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    private func loop() {
        vcpu.bindToCurrentThread()
        defer { control.threadExited() }
        // The boot benchmark measures process start → this line.
        logger.info("vcpu\(vcpu.id): first KVM_RUN")
        // The last exit was port I/O or MMIO, whose instruction KVM finishes only on the next KVM_RUN: a
        // parked vCPU must not leave it pending, or its saved state (snapshot, migration) lacks the value
        // an IN or MMIO read returned, and the guest goes on with whatever its register held before.
        var ioPending = false
        let complete = { [vcpu] in
            guard ioPending else { return }
            ioPending = false
            do { try vcpu.completePendingIO() } catch {}   // a failing KVM_RUN shows at the next run
        }
        while control.checkpoint(vcpu, beforeParking: complete) {
            let exit: VCPUExit
            do {
                exit = try vcpu.run()
            } catch {
                onEvent(.failed(vcpu: vcpu.id, message: "KVM_RUN failed: \(error)"))
                return
            }
            ioPending = exit.completesOnNextRun
            switch exit {
            case let .ioIn(port, data):
                pio.read(UInt64(port), data: data)
            case let .ioOut(port, data):
                pio.write(UInt64(port), data: data)
            case let .ioInString(port, size, data):
                forEachElement(data, size: size) { pio.read(UInt64(port), data: $0) }
            case let .ioOutString(port, size, data):
                forEachElement(UnsafeMutableRawBufferPointer(mutating: data), size: size) {
                    pio.write(UInt64(port), data: UnsafeRawBufferPointer($0))
                }
            case let .mmioRead(address, data):
                mmio.read(address, data: data)
            case let .mmioWrite(address, data):
                mmio.write(address, data: data)
            case .interrupted, .retry, .halt:
                continue
            case .shutdown:
                onEvent(.tripleFault(vcpu: vcpu.id))
                return
            case let .systemEvent(type):
                // x86 only sees these from PSCI-less paths; treat a reset/shutdown request as a triple fault.
                onEvent(.failed(vcpu: vcpu.id, message: "unexpected KVM system event \(type)"))
                return
            case let .internalError(suberror, details):
                let hex = details.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
                let rip = (try? vcpu.getRegs().rip).map { "0x" + String($0, radix: 16) } ?? "?"
                onEvent(.failed(vcpu: vcpu.id, message:
                    "KVM internal error, suberror \(suberror) (1 = emulation failure) at rip \(rip): \(hex)"))
                return
            case let .failEntry(reason):
                onEvent(.failed(vcpu: vcpu.id, message: "KVM entry failed, hardware reason 0x\(String(reason, radix: 16))"))
                return
            case let .unknown(reason):
                onEvent(.failed(vcpu: vcpu.id, message: "unhandled KVM exit reason \(reason)"))
                return
            }
        }
    }

    /// String port I/O (`rep outsb` etc.) arrives as `count` consecutive elements of `size` bytes.
    private func forEachElement(_ data: UnsafeMutableRawBufferPointer, size: Int,
                                _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        var offset = 0
        while offset + size <= data.count {
            body(UnsafeMutableRawBufferPointer(rebasing: data[offset..<offset + size]))
            offset += size
        }
    }
}
