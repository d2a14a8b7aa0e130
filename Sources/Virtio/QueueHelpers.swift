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
                guard case let .badDescriptor(_, head, _) = error, head < size else { throw error }
                try pushUsed(head: head, length: 0)
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
