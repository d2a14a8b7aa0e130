import Glibc
import Foundation

/// A blocking multi-producer queue for the control loop's own thread: `take()` sleeps on a condition
/// (the loop never spins and never occupies Swift's cooperative pool).
final class Mailbox<Message>: @unchecked Sendable {
    private let cond = NSCondition()
    private var items: [Message] = []

    func post(_ message: Message) {
        cond.lock()
        items.append(message)
        cond.signal()
        cond.unlock()
    }

    func take() -> Message {
        cond.lock()
        defer { cond.unlock() }
        while items.isEmpty { cond.wait() }
        return items.removeFirst()
    }
}
