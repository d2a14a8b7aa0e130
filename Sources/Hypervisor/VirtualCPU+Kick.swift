import Glibc

/// Getting a vCPU out of KVM_RUN from another thread (pause, snapshot, shutdown, device requests).
///
/// Protocol: `kick()` sets `kvm_run.immediate_exit = 1`, then sends `kickSignal` to the bound thread. If
/// the thread is inside KVM_RUN, the signal (no-op handler, no SA_RESTART) makes it return EINTR; if it is
/// about to enter, immediate_exit makes KVM_RUN return at once. Either way `run()` yields `.interrupted`.
/// immediate_exit stays set until `clearImmediateExit()`: clear it when the vCPU should run again (e.g.
/// from the controller while the vCPU is parked, so a kick that races the park is not lost).
extension VirtualCPU {
    /// SIGRTMIN+0: the signal used to kick vCPU threads (its default action would kill the process, so
    /// the handler is installed by `bindToCurrentThread` before any kick can target a thread).
    public static let kickSignal: Int32 = ckvm_sigrtmin()

    private static let kickHandlerInstalled: Bool = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0 // no SA_RESTART: KVM_RUN must see EINTR
        return sigaction(kickSignal, &action, nil) == 0
    }()

    /// Installs the no-op kick handler once per process (idempotent, thread-safe).
    public static func installKickSignalHandler() {
        _ = kickHandlerInstalled
    }

    /// Records the calling thread as the one running this vCPU; call from the vCPU thread before its first
    /// `run()`. Also installs the kick handler and unblocks `kickSignal` on this thread.
    public func bindToCurrentThread() {
        Self.installKickSignalHandler()
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, Self.kickSignal)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        boundThread.withLock { $0 = pthread_self() }
    }

    /// Forgets the bound thread; call from the vCPU thread before it exits so no signal targets a dead
    /// thread.
    public func unbindThread() {
        boundThread.withLock { $0 = nil }
    }

    /// Makes the vCPU's current or next `run()` return `.interrupted`. Safe from any thread.
    public func kick() {
        ckvm_set_immediate_exit(runState, 1)
        // Under the lock so the thread cannot unbind and exit between the check and the signal.
        boundThread.withLock { thread in
            if let thread { _ = pthread_kill(thread, Self.kickSignal) }
        }
    }

    /// Lets KVM_RUN enter the guest again after a kick.
    public func clearImmediateExit() {
        ckvm_set_immediate_exit(runState, 0)
    }

    /// Finishes the instruction of the last I/O or MMIO exit without running the guest any further. KVM
    /// completes such an instruction (an IN's or MMIO read's value into its register, a string operation's
    /// RSI/RDI/RCX, RIP past it) only when KVM_RUN is entered again, and that pending work is in no state
    /// userspace can read (api.rst, KVM_RUN): state saved before it would hand a snapshot or a migration
    /// destination a guest that never gets the value it read. Enters KVM_RUN with immediate_exit set: KVM
    /// completes the instruction, then returns at once. immediate_exit stays set. From the vCPU's thread.
    public func completePendingIO() throws(KVMError) {
        ckvm_set_immediate_exit(runState, 1)
        _ = try run()
    }
}
