/// The device-thread side of virtio-blk: pops every request the driver made available, hands it to
/// the I/O threads, and returns requests used in the order they complete, with at most one interrupt
/// per queue for each batch of completions (event-idx as the driver asks).
///
/// Without a pool, requests run on the device thread as they are popped: through the host page cache
/// they take microseconds, less than handing them to another thread costs.
///
/// Only the device thread touches the rings; the I/O threads touch the image and the requests' buffers.
final class BlockWorker: DeviceWorker {
    private let activation: VirtioActivation
    private let handler: BlockRequestHandler
    private let pool: BlockIOPool?
    private var gate = FlushGate<Job>()

    /// A request to run, with its place among the writes a flush waits for.
    private struct Job {
        let queue: Int
        let request: BlockRequest
        var writeTicket: UInt64?
    }

    init(thread: DeviceThread, activation: VirtioActivation, handler: BlockRequestHandler, pool: BlockIOPool?) throws {
        self.activation = activation
        self.handler = handler
        self.pool = pool
        guard let pool else { return }
        try thread.watch(pool.completed.fd) { [unowned self] _ in
            _ = try? pool.completed.read()
            self.publish(pool.takeCompleted())
        }
    }

    func queueNotified(_ index: Int) { popAll(index) }
    func processAll() { for index in activation.queues.indices { popAll(index) } }

    /// Waits for every request in flight (flushes held back included) and returns them used.
    func quiesce() {
        guard let pool else { return }
        repeat { pool.waitIdle() } while publish(pool.takeCompleted())
    }

    /// Reset: the I/O in flight finishes, then the threads exit; nothing more is returned to the driver.
    func finish() { pool?.stop() }

    /// Starts every available request, re-arming notifications and re-checking when the ring looks
    /// empty (with event-idx, a chain added meanwhile would otherwise wait for a kick that never comes).
    private func popAll(_ index: Int) {
        let queue = activation.queues[index]
        guard queue.isReady else { return }
        do {
            repeat {
                while let chain = try queue.popValid() { try start(chain, queue: index) }
            } while try queue.enableNotification()
            // Malformed chains, requests without a status byte and those served inline were returned at once.
            try activation.notifyIfNeeded(queue)
        } catch {
            // A ring that left guest RAM cannot be served; the next notification retries.
        }
    }

    private func start(_ chain: DescriptorChain, queue: Int) throws {
        guard let request = BlockRequest(chain, memory: activation.memory) else {
            return try activation.queues[queue].pushUsed(head: chain.head, length: 0)
        }
        var job = Job(queue: queue, request: request)
        switch request.type {
        case .flush?:
            if let ready = gate.admit(job) { submit(ready) }
        case .write?, .discard?, .writeZeroes?:
            job.writeTicket = gate.writeStarted()
            submit(job)
        default:
            submit(job)
        }
    }

    private func submit(_ job: Job) {
        let serve = { [handler, memory = activation.memory] in
            BlockCompletion(queue: job.queue, head: job.request.chain.head,
                            length: handler.serve(job.request, memory: memory), writeTicket: job.writeTicket)
        }
        if let pool { pool.submit(serve) } else { _ = complete(serve()) }
    }

    /// Returns what the I/O threads finished as used and interrupts each queue that needs it. Returns
    /// whether flushes were released (they are in flight now).
    @discardableResult
    private func publish(_ completions: [BlockCompletion]) -> Bool {
        var released = false
        for completion in completions { released = complete(completion) || released }
        for index in Set(completions.map(\.queue)).sorted() { try? activation.notifyIfNeeded(activation.queues[index]) }
        return released
    }

    /// Returns one request used (the caller interrupts); returns whether it released flushes.
    private func complete(_ completion: BlockCompletion) -> Bool {
        // A ring that left guest RAM cannot take it; the driver will reset the device.
        try? activation.queues[completion.queue].pushUsed(head: completion.head, length: completion.length)
        guard let ticket = completion.writeTicket else { return false }
        let flushes = gate.writeFinished(ticket)
        for flush in flushes { submit(flush) }
        return !flushes.isEmpty
    }
}
