import Foundation
import Hypervisor

/// What an I/O thread hands back to the device thread: the chain to return used, and the ticket of a
/// write the flush gate waits for.
struct BlockCompletion {
    let queue: Int
    let head: UInt16
    let length: UInt32
    let writeTicket: UInt64?
}

/// Dedicated OS threads (never Swift's cooperative pool) that run a virtio-blk device's requests, so
/// the guest's queue depth reaches the image instead of one request at a time. The device thread
/// submits jobs; results are collected in completion order and signalled on `completed`.
///
/// Threads are started on demand, up to `maxThreads`, and live until `stop()`.
final class BlockIOPool: @unchecked Sendable {
    typealias Job = () -> BlockCompletion

    /// Readable when `takeCompleted()` has something.
    let completed: EventFD
    private let name: String
    private let maxThreads: Int
    private let cond = NSCondition()
    private var jobs: [Job] = []
    private var results: [BlockCompletion] = []
    /// Jobs taken by a thread and not finished.
    private var running = 0
    private var threads = 0
    private var idleThreads = 0
    private var exitedThreads = 0
    private var stopping = false

    init(name: String, maxThreads: Int) throws {
        self.name = name
        self.maxThreads = maxThreads
        completed = try EventFD()
    }

    func submit(_ job: @escaping Job) {
        cond.lock()
        defer { cond.unlock() }
        jobs.append(job)
        if idleThreads < jobs.count && threads < maxThreads {
            threads += 1
            let thread = Thread { self.run() }
            thread.name = "\(name)-io"
            thread.stackSize = 256 << 10
            thread.start()
        } else {
            cond.signal()
        }
    }

    /// The jobs finished since the last call, in the order they finished.
    func takeCompleted() -> [BlockCompletion] {
        cond.lock()
        defer { cond.unlock() }
        defer { results.removeAll(keepingCapacity: true) }
        return results
    }

    /// Blocks until every submitted job has finished (its result waits in `takeCompleted()`).
    func waitIdle() {
        cond.lock()
        while !jobs.isEmpty || running > 0 { cond.wait() }
        cond.unlock()
    }

    /// Lets the threads finish every submitted job, then waits for them to exit. Results not taken are dropped.
    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while exitedThreads < threads { cond.wait() }
        results.removeAll()
        cond.unlock()
    }

    private func run() {
        cond.lock()
        while true {
            while jobs.isEmpty && !stopping {
                idleThreads += 1
                cond.wait()
                idleThreads -= 1
            }
            guard !jobs.isEmpty else { break }
            let job = jobs.removeFirst()
            running += 1
            cond.unlock()
            let result = job()
            cond.lock()
            running -= 1
            results.append(result)
            // One wakeup per batch: the device thread takes everything that finished meanwhile.
            if results.count == 1 { try? completed.write() }
            if jobs.isEmpty && running == 0 { cond.broadcast() }
        }
        exitedThreads += 1
        cond.broadcast()
        cond.unlock()
    }
}
