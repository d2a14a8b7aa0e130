import Glibc

/// Why an eventfd operation failed.
public enum EventFDError: Error, Equatable, CustomStringConvertible {
    case create(errno: Int32)
    case write(errno: Int32)
    case read(errno: Int32)

    public var description: String {
        switch self {
        case .create(let e): return "eventfd() failed: \(errnoText(e)) — out of file descriptors (ulimit -n)?"
        case .write(let e): return "eventfd write failed: \(errnoText(e))"
        case .read(let e): return "eventfd read failed: \(errnoText(e))"
        }
    }
}

/// A Linux eventfd: the counter KVM signals for an ioeventfd and waits on for an irqfd. Owns its fd
/// (closed on deinit); reads and writes are atomic in the kernel, so any thread may use it.
public final class EventFD: Sendable {
    public let fd: Int32

    /// `nonBlocking` makes `read()` return nil instead of waiting when the counter is 0.
    public init(initialValue: UInt32 = 0, nonBlocking: Bool = true, semaphore: Bool = false) throws(EventFDError) {
        var flags = CKVM_EFD_CLOEXEC
        if nonBlocking { flags |= CKVM_EFD_NONBLOCK }
        if semaphore { flags |= CKVM_EFD_SEMAPHORE }
        let fd = eventfd(initialValue, flags)
        guard fd >= 0 else { throw .create(errno: errno) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Adds `value` to the counter (wakes readers; for an irqfd, injects the interrupt).
    public func write(_ value: UInt64 = 1) throws(EventFDError) {
        var v = value
        while Glibc.write(fd, &v, 8) < 0 {
            let e = errno
            if e != EINTR { throw .write(errno: e) }
        }
    }

    /// Returns and resets the counter; nil when non-blocking and nothing was signalled.
    public func read() throws(EventFDError) -> UInt64? {
        var v: UInt64 = 0
        while Glibc.read(fd, &v, 8) < 0 {
            let e = errno
            if e == EAGAIN { return nil }
            if e != EINTR { throw .read(errno: e) }
        }
        return v
    }
}
