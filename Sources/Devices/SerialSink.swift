#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Where a UART's transmitted bytes go. Called on the vCPU thread that wrote THR, outside the
/// device's lock; a sink that blocks stalls that vCPU (as a real UART with a full line would).
public protocol SerialSink: Sendable {
    func write(_ bytes: UnsafeRawBufferPointer)
}

/// Why a sink stopped delivering output.
public enum SerialSinkError: Error, Equatable, CustomStringConvertible {
    case writeFailed(errno: Int32)

    public var description: String {
        switch self {
        case let .writeFailed(err): return "serial output write failed: \(String(cString: strerror(err)))"
        }
    }
}

/// Discards output (`--serial null`, `off`).
public struct NullSink: SerialSink {
    public init() {}
    public func write(_ bytes: UnsafeRawBufferPointer) {}
}

/// Writes output to a file descriptor (tty, pty, file, socket), completely.
///
/// Short writes are continued, EINTR is retried and EAGAIN waits in poll() for the descriptor to
/// become writable: guest output is never dropped while the descriptor works. On any other error
/// (reader gone, EIO) the output is discarded and the error kept in `lastError`, because a dead
/// console must not stop the guest. SIGPIPE must be ignored by the process for sockets/pipes.
public final class FileDescriptorSink: SerialSink {
    public let fd: Int32
    private let closeOnDeinit: Bool
    private let failure = Mutex<SerialSinkError?>(nil)

    public init(fd: Int32, closeOnDeinit: Bool = false) {
        self.fd = fd
        self.closeOnDeinit = closeOnDeinit
    }

    deinit {
        if closeOnDeinit { close(fd) }
    }

    /// The first error that made this sink discard output, if any.
    public var lastError: SerialSinkError? { failure.withLock { $0 } }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard var next = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let n = Glibc.write(fd, next, remaining)
            if n > 0 {
                next += n
                remaining -= n
                continue
            }
            let err = n < 0 ? errno : EIO
            switch err {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&pfd, 1, -1)
            default:
                failure.withLock { if $0 == nil { $0 = .writeFailed(errno: err) } }
                return
            }
        }
    }
}

/// Collects output in memory (tests, and for anything that wants to inspect the console).
public final class MemorySink: SerialSink {
    private let buffer = Mutex<[UInt8]>([])

    public init() {}

    public func write(_ bytes: UnsafeRawBufferPointer) {
        buffer.withLock { $0.append(contentsOf: bytes) }
    }

    public var bytes: [UInt8] { buffer.withLock { $0 } }
    public var text: String { String(decoding: bytes, as: UTF8.self) }
    public func clear() { buffer.withLock { $0.removeAll() } }
}
