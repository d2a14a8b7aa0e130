/// Runs items 0..<count on dedicated threads (restore, verify, the memory writer): each thread claims the
/// next item in index order and runs it; stops at the first failure and reports the failure with the lowest
/// item index.
enum ParallelJobs {
    typealias Job = (_ item: Int) throws -> Void

    /// `failed` is called once when a job fails, so that jobs waiting for that one can give up.
    static func run(count: Int, threads: Int, name: String, makeJob: @escaping @Sendable () throws -> Job,
                    failed: @escaping @Sendable () -> Void = {}) throws {
        let state = State(failed: failed)
        let workers = WorkerThreads(count: max(1, min(threads, count)), name: name) { _ in
            let job: Job
            do { job = try makeJob() } catch {
                state.fail(error, at: -1)
                return
            }
            while let item = state.claim(count: count) {
                do { try job(item) } catch {
                    state.fail(error, at: item)
                    return
                }
            }
        }
        workers.join()
        if let error = state.failure.error { throw error }
    }

    private final class State: @unchecked Sendable {
        let monitor = Monitor()
        let failed: @Sendable () -> Void
        var next = 0
        var failure = FirstFailure()
        var stopped = false

        init(failed: @escaping @Sendable () -> Void) { self.failed = failed }

        func claim(count: Int) -> Int? {
            monitor.locked {
                guard !stopped, next < count else { return nil }
                defer { next += 1 }
                return next
            }
        }

        func fail(_ error: Error, at item: Int) {
            let first = monitor.locked {
                failure.record(error, at: item)
                defer { stopped = true }
                return !stopped
            }
            if first { failed() }
        }
    }
}
