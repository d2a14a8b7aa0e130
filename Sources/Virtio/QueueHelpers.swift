/// Queue handling every device repeats: skipping malformed chains and interrupting the driver only
/// when it asked for it.
extension Virtqueue {
    /// The next well-formed chain, or nil when the ring is empty. A malformed chain goes back to the
    /// driver as used with length 0, so a driver bug costs one request, not the queue; only a ring
    /// that is not in guest RAM throws.
    public func popValid() throws(VirtioError) -> DescriptorChain? {
        while true {
            do {
                return try pop()
            } catch {
                guard case let .badDescriptor(_, head, _) = error else { throw error }
                // A head outside the table cannot be returned (any id would name another chain): consumed only.
                if head < size { try pushUsed(head: head, length: 0) }
            }
        }
    }
}

extension VirtioActivation {
    /// Interrupts the driver for `queue` if what was used since the last interrupt warrants one.
    public func notifyIfNeeded(_ queue: Virtqueue) throws(VirtioError) {
        if try queue.needsNotification() { interrupt.signalQueue(queue.index) }
    }
}

extension VirtioActivation {
    /// Serves the chains the driver made available on queue `index`, returning each as used with the
    /// length `serve` wrote into it, then interrupts the driver if needed.
    ///
    /// After `budget` chains it stops and kicks the queue's own eventfd, so the device's other fds get
    /// a turn before it continues. `serve` returns nil to leave a chain for later (the device cannot
    /// take it now, and knows when to call again).
    public func serveAvailable(queue index: Int, budget: Int = 256,
                               _ serve: (DescriptorChain) throws -> UInt32?) throws {
        let queue = queues[index]
        var handled = 0
        serving: repeat {
            while let chain = try queue.popValid() {
                guard let length = try serve(chain) else {
                    queue.unpop()
                    break serving
                }
                try queue.pushUsed(head: chain.head, length: length)
                handled += 1
                if handled == budget {
                    try? queueEvents[index].write()
                    break serving
                }
            }
        } while try queue.enableNotification()
        try notifyIfNeeded(queue)
    }
}
