import Foundation
import Glibc
import Snapshot
import Synchronization

/// After an on-demand restore the guest runs on snapshot pages that were mapped, not read: this thread reads
/// them from `memory.bin` meanwhile and checks their checksums, at a lower priority than the vCPUs. A
/// mismatch means the guest may already have used memory the snapshot did not hold: the control loop then
/// pauses the VM and refuses to resume it (`Vmm.restoreVerified`).
final class RestoreVerification: Sendable {
    private let cancelled = Atomic<Bool>(false)

    /// Starts verifying `memory`; `report` gets the outcome, on the verification thread (unless cancelled).
    init(_ memory: OnDemandMemory, report: @escaping @Sendable (Result<RestoreStats, any Error>) -> Void) {
        let thread = Thread { [self] in
            // On Linux the nice value is per thread: 0 means this one.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
            let result = Result { try memory.verify(isCancelled: { self.cancelled.load(ordering: .relaxed) }) }
            if !cancelled.load(ordering: .relaxed) { report(result) }
        }
        thread.name = "restore-verify"
        thread.start()
    }

    /// The VM is gone: stop reading (the thread ends after the run it is on).
    func cancel() { cancelled.store(true, ordering: .relaxed) }
}

extension Vmm {
    /// Verifies what an on-demand restore mapped, in the background; the result comes back to the control loop.
    func verifyAfterRestore(_ memory: OnDemandMemory) {
        logger.info("on-demand restore: \(memory.stats); verifying \(memory.stats.mappedBytes) mapped bytes in the background")
        let box = mailbox, gen = generation
        restoreVerification = RestoreVerification(memory) { box.post(.restoreVerified($0, generation: gen)) }
    }

    /// The background verification finished for the current VM.
    func restoreVerified(_ result: Result<RestoreStats, any Error>) {
        restoreVerification = nil
        switch result {
        case let .success(stats):
            logger.info("on-demand restore: \(stats.bytesRead) mapped bytes verified in \(stats.seconds) s")
            events.emit("vm", "restore-verified")
        case let .failure(error):
            let message = "on-demand restore: \(error): the guest ran on memory that does not match the snapshot; it is paused and cannot be resumed"
            logger.error("\(message)")
            writeError(message)
            memoryMismatch = "\(error)"
            events.emit("vm", "restore-verification-failed", ["error": "\(error)"])
            if let vm, state == .Running {
                events.emit("vm", "pausing")
                vm.pause()
                state = .Paused
                events.emit("vm", "paused")
            }
        }
    }
}
