import Foundation
import Hypervisor

/// Serves a device's queues on its own `DeviceThread`, for devices whose requests complete
/// synchronously (block, rng): a notification drains that queue, and the driver gets at most one
/// interrupt per drained batch. One per device, for its whole life; each activation starts a thread.
public final class QueueWorker: @unchecked Sendable {
    /// Serves one chain on the device thread; returns how many bytes it wrote into the writable buffers.
    public typealias Serve = (DescriptorChain) -> UInt32

    private let name: String
    /// Guards `thread` and `events`: start/stop/pause/resume come from vCPU and control threads.
    private let lock = NSLock()
    private var thread: DeviceThread?
    /// The notifiers of the ready queues.
    private var events: [EventFD] = []

    public init(name: String) {
        self.name = name
    }

    /// Starts a thread serving every ready queue of `activation`, after stopping a previous one.
    /// Fails when a ring is not in guest RAM.
    public func start(_ activation: VirtioActivation, serve: @escaping Serve) throws {
        lock.lock()
        defer { lock.unlock() }
        stopLocked()
        for queue in activation.queues { try queue.validate() }
        let thread = try DeviceThread(name: name)
        var watched: [EventFD] = []
        for (index, (queue, event)) in zip(activation.queues, activation.queueEvents).enumerated() where queue.isReady {
            try thread.watch(event.fd) { [interrupt = activation.interrupt] _ in
                _ = try? event.read()
                // A ring that left guest RAM cannot be served; the next notification retries.
                if (try? queue.drain(serve)) == true { interrupt.signalQueue(index) }
            }
            watched.append(event)
        }
        thread.start()
        self.thread = thread
        events = watched
        // Chains made available before the thread watched (a restored ring) must not wait for a kick.
        kickLocked()
    }

    /// Joins the thread. Idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        stopLocked()
    }

    /// Returns once the thread is parked between chains: synchronous requests mean none is in flight.
    public func pause() {
        lock.lock()
        defer { lock.unlock() }
        thread?.pause()
    }

    /// Unparks the thread and drains every queue: a notification may have been consumed before a
    /// snapshot, and a restored queue has none pending. (A kick, not `DeviceThread.onResume`, so the
    /// drain also happens when the thread was never paused, e.g. right after a restore's activation.)
    public func resume() {
        lock.lock()
        defer { lock.unlock() }
        thread?.resume()
        kickLocked()
    }

    private func kickLocked() {
        for event in events { try? event.write() }
    }

    private func stopLocked() {
        thread?.stop()
        thread = nil
        events = []
    }
}

extension Virtqueue {
    /// Serves every available chain, re-arming notifications and re-checking when the ring looks
    /// empty (with event-idx, a chain added meanwhile would otherwise wait for a kick that never
    /// comes). Returns whether the driver wants an interrupt for the batch. A malformed chain is
    /// consumed and returned used with length 0, so the queue keeps working.
    public func drain(_ serve: (DescriptorChain) -> UInt32) throws(VirtioError) -> Bool {
        repeat {
            while true {
                let chain: DescriptorChain
                do {
                    guard let next = try pop() else { break }
                    chain = next
                } catch .badDescriptor(_, let head, _) {
                    // A head outside the table cannot be returned: any id would name another chain.
                    if head < size { try pushUsed(head: head, length: 0) }
                    continue
                }
                try pushUsed(head: chain.head, length: serve(chain))
            }
        } while try enableNotification()
        return try needsNotification()
    }
}
