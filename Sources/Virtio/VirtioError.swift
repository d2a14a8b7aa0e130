import Glibc

/// Why a virtqueue or device operation failed. Guest-caused errors name the queue and descriptor so a
/// log line is enough to find a driver bug.
public enum VirtioError: Error, CustomStringConvertible, Equatable {
    /// The driver put something invalid in a ring (out-of-range index, loop, bad address, …).
    case badDescriptor(queue: Int, head: UInt16, reason: String)
    /// A ring address the driver configured is not guest RAM.
    case badRing(queue: Int, reason: String)
    /// A request the device cannot serve (unknown type, too short, …).
    case badRequest(String)
    /// The host side failed (open, read, write, socket); the message is the host's error.
    case backend(String)

    public var description: String {
        switch self {
        case let .badDescriptor(q, head, reason): return "virtqueue \(q): descriptor chain \(head): \(reason)"
        case let .badRing(q, reason): return "virtqueue \(q): \(reason)"
        case let .badRequest(m): return "bad request: \(m)"
        case let .backend(m): return m
        }
    }
}

/// The host's text for an errno value, for error messages.
func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }
