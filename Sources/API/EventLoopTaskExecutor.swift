import NIOCore

/// Runs a request's task on its connection's event loop instead of Swift's cooperative pool.
///
/// The API then needs no pool thread at all: a command the VMM answers at once (`vmm.ping`) completes
/// without leaving the loop, and a command answered later by the VMM's thread comes back to the loop in
/// one hop. The router never blocks, so the loop stays free for other connections.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
