import CDBus
import Foundation
import Glibc
import Synchronization

/// The D-Bus API's own thread and the executor of the tasks that answer method calls.
///
/// The thread polls the connection's watches and a wake-up pipe, lets libdbus read and write, dispatches
/// incoming calls and runs queued work: task jobs (a call's task suspends while the VMM works, and the
/// VMM's thread resumes it by enqueueing its next job here) and signals posted by event observers. So
/// the connection is only ever used on this thread, no thread waits for the VMM, a long command (a
/// migration) leaves the bus responsive, and nothing runs on Swift's cooperative pool.
final class DBusThread: TaskExecutor {
    private struct Queue: ~Copyable {
        var work: [@Sendable () -> Void] = []
        /// Set when the loop has ended: later work runs at once on the caller's thread (it then finds the
        /// connection closed), so a task resumed after the end still completes instead of leaking.
        var ended = false
    }

    /// Whether the loop may end now that `stop` asked it to (no reply is owed).
    typealias Idle = @Sendable () -> Bool

    /// How long `stop` waits for the replies of calls still being carried out.
    static let drainTimeout: Duration = .seconds(2)

    private let connection: BusConnection
    /// Read and write ends of the wake-up pipe: one byte written makes `poll` return.
    private let wakeup: (read: Int32, write: Int32)
    private let queue = Mutex(Queue())
    private let ended = DispatchSemaphore(value: 0)
    private let stopped = Atomic(false)

    init(connection: BusConnection) throws(DBusServiceError) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw .cannotCreateWakeupPipe(errno: errno) }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        self.connection = connection
        self.wakeup = (fds[0], fds[1])
    }

    /// Starts the loop; it ends when `stop` is called or the bus goes away.
    func start(idle: @escaping Idle, onDisconnect: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            run(idle: idle)
            if !stopped.load(ordering: .acquiring) { onDisconnect() }
            finish()
        }
        thread.name = "dbus"
        thread.start()
    }

    /// Runs `work` on the D-Bus thread (at once on the caller's, once the loop has ended).
    func execute(_ work: @escaping @Sendable () -> Void) {
        // A full pipe (EAGAIN) already wakes the loop.
        let queued = queue.withLock { queue in
            guard !queue.ended else { return false }
            queue.work.append(work)
            var byte: UInt8 = 1
            _ = write(wakeup.write, &byte, 1)
            return true
        }
        if !queued { work() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Ends the loop once the replies still owed are sent (at most `drainTimeout`), closes the connection
    /// and waits for the thread. Idempotent.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        execute {}  // wakes the loop to notice `stopped`
        ended.wait()
    }

    private func run(idle: Idle) {
        var deadline: ContinuousClock.Instant?
        while true {
            runQueuedWork()
            connection.dispatch()
            guard connection.isConnected else { return }
            if stopped.load(ordering: .acquiring) {
                let end = deadline ?? .now + Self.drainTimeout
                deadline = end
                if idle() || .now >= end { return }
            }
            poll(timeout: deadline.map { Int32(max(($0 - .now) / .milliseconds(1), 1)) } ?? -1)
        }
    }

    private func runQueuedWork() {
        for work in queue.withLock({ queue in defer { queue.work = [] }; return queue.work }) { work() }
    }

    /// Waits for the bus socket or the wake-up pipe, then lets libdbus handle what is ready.
    private func poll(timeout: Int32) {
        let watched = connection.watches.pollEntries()
        var entries = [pollfd(fd: wakeup.read, events: Int16(POLLIN), revents: 0)] + watched.map(\.entry)
        guard Glibc.poll(&entries, nfds_t(entries.count), timeout) > 0 else { return }
        if entries[0].revents != 0 {
            var bytes = [UInt8](repeating: 0, count: 256)
            while read(wakeup.read, &bytes, bytes.count) == bytes.count {}
        }
        for (index, item) in watched.enumerated() where entries[index + 1].revents != 0 {
            connection.watches.handle(item.watch, revents: entries[index + 1].revents)
        }
    }

    /// Closes the connection, then lets work queued meanwhile run (it finds the connection closed).
    private func finish() {
        connection.close()
        let late = queue.withLock { queue in
            queue.ended = true
            defer { queue.work = [] }
            return queue.work
        }
        for work in late { work() }
        ended.signal()
    }

    /// Closed only here: once nothing references the thread, nothing can write to the pipe any more (and
    /// a start that failed before the loop ran leaks nothing).
    deinit {
        close(wakeup.read)
        close(wakeup.write)
    }
}
