/// Serves a device's queues for devices whose requests complete synchronously (rng): a
/// notification drains that queue, and the driver gets at most one interrupt per drained batch. The
/// thread's life (start, pause, resume, stop) is `DeviceRunner`'s, as for every device.
final class QueueWorker: @unchecked Sendable {
    /// Serves one chain on the device thread; returns how many bytes it wrote into the writable buffers.
    typealias Serve = (DescriptorChain) -> UInt32

    private let name: String
    private let runner = DeviceRunner()

    init(name: String) {
        self.name = name
    }

    /// Starts a thread serving every ready queue of `activation` (after stopping a previous one).
    /// Fails when a ring is not in guest RAM.
    func start(_ activation: VirtioActivation, serve: @escaping Serve) throws {
        for queue in activation.queues { try queue.validate() }
        try runner.start(name: name, queueEvents: activation.queueEvents) { _ in
            DrainingWorker(activation: activation, serve: serve)
        }
    }

    func stop() { runner.stop() }
    func pause() { runner.pause() }
    func resume() { runner.resume() }
}

/// Drains a notified queue (every queue at activation and after a resume).
private final class DrainingWorker: DeviceWorker {
    let activation: VirtioActivation
    let serve: QueueWorker.Serve

    init(activation: VirtioActivation, serve: @escaping QueueWorker.Serve) {
        self.activation = activation
        self.serve = serve
    }

    func queueNotified(_ index: Int) { drain(index) }
    func processAll() { for index in activation.queues.indices { drain(index) } }

    private func drain(_ index: Int) {
        let queue = activation.queues[index]
        guard queue.isReady else { return }
        // A ring that left guest RAM cannot be served; the next notification retries.
        if (try? queue.drain(serve)) == true { activation.interrupt.signalQueue(index) }
    }
}

extension Virtqueue {
    /// Serves every available chain, re-arming notifications and re-checking when the ring looks
    /// empty (with event-idx, a chain added meanwhile would otherwise wait for a kick that never
    /// comes). Returns whether the driver wants an interrupt for the batch. A malformed chain is
    /// consumed and returned used with length 0, so the queue keeps working.
    func drain(_ serve: (DescriptorChain) -> UInt32) throws(VirtioError) -> Bool {
        repeat {
            while let chain = try popValid() {
                try pushUsed(head: chain.head, length: serve(chain))
            }
        } while try enableNotification()
        return try needsNotification()
    }
}
