/// Produces items 0..<count in parallel on dedicated threads and consumes them in order on the calling
/// thread: compressor threads feeding the ordered writer of `memory.bin`.
///
/// Memory stays bounded: a producer may run at most `window` items ahead of the consumer, and buffers are
/// recycled, so a 64 GiB guest needs the same few megabytes as a small one.
enum OrderedPipeline {
    /// A producer's per-thread state (a zstd context, scratch space).
    typealias Produce = (_ item: Int, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int

    static func run(count: Int, threads: Int, bufferSize: Int, name: String,
                    makeProducer: @escaping @Sendable () throws -> Produce,
                    consume: (_ item: Int, _ bytes: UnsafeRawBufferPointer) throws -> Void) throws {
        let state = State(window: threads * 2 + 1, bufferSize: bufferSize)
        defer { state.releaseBuffers() }
        let workers = WorkerThreads(count: threads, name: name) { _ in
            state.producerLoop(count: count, makeProducer: makeProducer)
        }
        state.consumerLoop(count: count, consume: consume)
        workers.join()
        if let error = state.failure.error { throw error }
    }

    private final class State: @unchecked Sendable {
        let monitor = Monitor()
        let window: Int
        let bufferSize: Int
        var nextClaim = 0
        var nextConsume = 0
        var ready: [Int: (buffer: UnsafeMutableRawBufferPointer, length: Int)] = [:]
        var free: [UnsafeMutableRawBufferPointer] = []
        var all: [UnsafeMutableRawBufferPointer] = []
        var failure = FirstFailure()
        var stopped = false

        init(window: Int, bufferSize: Int) {
            self.window = window
            self.bufferSize = bufferSize
        }

        func producerLoop(count: Int, makeProducer: () throws -> Produce) {
            let produce: Produce
            do { produce = try makeProducer() } catch {
                fail(error, at: -1)
                return
            }
            while true {
                let claim: (item: Int, buffer: UnsafeMutableRawBufferPointer)? = monitor.locked {
                    while !stopped && nextClaim < count && nextClaim >= nextConsume + window { monitor.wait() }
                    guard !stopped, nextClaim < count else { return nil }
                    defer { nextClaim += 1 }
                    return (nextClaim, takeBuffer())
                }
                guard let (item, buffer) = claim else { return }
                do {
                    let length = try produce(item, buffer)
                    monitor.locked {
                        ready[item] = (buffer, length)
                        monitor.broadcast()
                    }
                } catch {
                    monitor.locked { free.append(buffer) }
                    fail(error, at: item)
                    return
                }
            }
        }

        func consumerLoop(count: Int, consume: (Int, UnsafeRawBufferPointer) throws -> Void) {
            for item in 0..<count {
                let next: (buffer: UnsafeMutableRawBufferPointer, length: Int)? = monitor.locked {
                    while !stopped && ready[item] == nil { monitor.wait() }
                    return stopped ? nil : ready.removeValue(forKey: item)
                }
                guard let (buffer, length) = next else { return }
                do {
                    try consume(item, UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
                } catch {
                    monitor.locked { free.append(buffer) }
                    fail(error, at: item)
                    return
                }
                monitor.locked {
                    free.append(buffer)
                    nextConsume += 1
                    monitor.broadcast()
                }
            }
        }

        private func takeBuffer() -> UnsafeMutableRawBufferPointer {
            if let buffer = free.popLast() { return buffer }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
            all.append(buffer)
            return buffer
        }

        private func fail(_ error: Error, at item: Int) {
            monitor.locked {
                failure.record(error, at: item)
                stopped = true
                monitor.broadcast()
            }
        }

        func releaseBuffers() {
            for buffer in all { buffer.deallocate() }
            all = []
        }
    }
}

/// Runs items 0..<count on dedicated threads in any order (restore, verify); stops at the first failure
/// and reports the failure with the lowest item index.
enum ParallelJobs {
    typealias Job = (_ item: Int) throws -> Void

    static func run(count: Int, threads: Int, name: String, makeJob: @escaping @Sendable () throws -> Job) throws {
        let state = State()
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
        var next = 0
        var failure = FirstFailure()
        var stopped = false

        func claim(count: Int) -> Int? {
            monitor.locked {
                guard !stopped, next < count else { return nil }
                defer { next += 1 }
                return next
            }
        }

        func fail(_ error: Error, at item: Int) {
            monitor.locked {
                failure.record(error, at: item)
                stopped = true
            }
        }
    }
}
