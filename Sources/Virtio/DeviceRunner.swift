import Foundation
import Hypervisor

/// What a device runs on its `DeviceThread` between `activate` and `reset`. Only that thread calls it
/// (or the activating thread, before the device thread starts).
protocol DeviceWorker: AnyObject {
    /// The driver notified queue `index` (its eventfd is already drained).
    func queueNotified(_ index: Int)
    /// Processes every queue once: at activation (a restored queue must not wait for a kick) and after
    /// each resume (a kick may have been consumed before a snapshot was taken).
    func processAll()
    /// A pause was requested: work handed to other threads must be complete, and its results
    /// returned to the driver, when this returns.
    func quiesce()
    /// The thread is stopping (reset): other threads the worker started must be gone when this returns.
    func finish()
}

extension DeviceWorker {
    /// Most workers do everything on the device thread: nothing is left when it parks or stops.
    func quiesce() {}
    func finish() {}
}

/// The control-thread side of an active device, shared by all devices: builds the worker and its
/// thread on `activate`, parks it on `pause`, joins it on `reset`. A lock guards the thread reference;
/// the worker itself is touched only by its thread.
final class DeviceRunner: @unchecked Sendable {
    private let lock = NSLock()
    private var thread: DeviceThread?

    /// Starts a thread that drains `queueEvents` into the worker `makeWorker` builds. The worker may
    /// watch its own fds on the thread it is given; it must hold that thread `unowned` (the thread owns
    /// the worker through its handlers).
    func start(name: String, queueEvents: [EventFD], makeWorker: (DeviceThread) throws -> any DeviceWorker) throws {
        stop()
        let box = WorkerBox()
        let thread = try DeviceThread(name: name, onPause: { box.worker?.quiesce() }, onResume: { box.worker?.processAll() },
                                      onExit: { box.worker?.finish() })
        let worker = try makeWorker(thread)
        box.worker = worker
        for (index, event) in queueEvents.enumerated() {
            try thread.watch(event.fd) { [unowned worker] _ in
                _ = try? event.read()
                worker.queueNotified(index)
            }
        }
        // Before the thread exists nothing else touches the worker, so the first pass runs here.
        worker.processAll()
        lock.withLock { self.thread = thread }
        thread.start()
    }

    var isRunning: Bool { lock.withLock { thread != nil } }

    func pause() { lock.withLock { thread }?.pause() }
    func resume() { lock.withLock { thread }?.resume() }

    /// Joins the thread and drops the worker. Idempotent.
    func stop() {
        let t = lock.withLock { () -> DeviceThread? in
            defer { thread = nil }
            return thread
        }
        t?.stop()
    }

    private final class WorkerBox: @unchecked Sendable {
        var worker: (any DeviceWorker)?
    }
}
