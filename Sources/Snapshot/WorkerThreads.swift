import Foundation

/// Dedicated OS threads for compression and restore.
///
/// Why not Swift concurrency: these threads block in `pread`/`pwrite` and run for seconds of CPU-bound
/// zstd work; on the cooperative pool (one thread per core, two cores here) that would starve every other
/// task of the VMM, including the API server. Callers of the pipelines block too, so the VMM calls them
/// from its own control thread, never from an async task.
final class WorkerThreads: @unchecked Sendable {
    private let monitor = Monitor()
    private var running: Int

    /// Starts `count` threads running `body(threadIndex)`.
    init(count: Int, name: String, body: @escaping @Sendable (Int) -> Void) {
        running = count
        for index in 0..<count {
            let thread = Thread { [self] in
                body(index)
                monitor.locked {
                    running -= 1
                    monitor.broadcast()
                }
            }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Waits until every thread has returned from its body.
    func join() {
        monitor.locked {
            while running > 0 { monitor.wait() }
        }
    }
}

/// The first failure of a parallel job, by item index, so that a corrupted snapshot yields the same error
/// whichever thread found it first.
struct FirstFailure {
    private(set) var index = Int.max
    private(set) var error: Error?

    mutating func record(_ error: Error, at index: Int) {
        if index < self.index {
            self.index = index
            self.error = error
        }
    }
}
