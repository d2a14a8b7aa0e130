import Glibc

/// One connected stream socket (UNIX or TCP) in blocking mode, used by one migration thread.
///
/// Blocking I/O on a dedicated thread keeps the code straight-line; `shutdown()` from any other thread
/// wakes a blocked read or write, which is how a migration is cancelled. A peer that makes no progress
/// for `timeoutSeconds` is treated as gone, so a stopped peer cannot keep a source VM paused forever.
public final class Connection: @unchecked Sendable {
    let fd: Int32
    public let timeoutSeconds: Int

    /// Adopts a connected socket `fd` (closed when the connection is released).
    public init(fd: Int32, timeoutSeconds: Int = 30) {
        self.fd = fd
        self.timeoutSeconds = timeoutSeconds
        var limit = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        // Every message waits for its answer: Nagle would only add latency to the small ones.
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Connects to `url` (each resolved TCP address in turn).
    public static func connect(to url: MigrationURL, timeoutSeconds: Int = 30) throws(MigrationError) -> Connection {
        switch url {
        case let .unix(path):
            let fd = try openSocket(AF_UNIX, url)
            guard SocketAddress.withUnix(path, { Glibc.connect(fd, $0, $1) }) == 0 else {
                let err = errno
                close(fd)
                throw .socket(operation: "connect to", target: url.description, errno: err)
            }
            return Connection(fd: fd, timeoutSeconds: timeoutSeconds)
        case let .tcp(host, port):
            var lastErrno: Int32 = EHOSTUNREACH
            for address in try SocketAddress.tcp(host: host, port: port, passive: false, url: url.description) {
                let fd = try openSocket(address.family, url)
                // SO_SNDTIMEO also bounds connect(2) on Linux.
                var limit = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                if address.withSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 {
                    return Connection(fd: fd, timeoutSeconds: timeoutSeconds)
                }
                lastErrno = errno
                close(fd)
            }
            throw .socket(operation: "connect to", target: url.description, errno: lastErrno)
        }
    }

    static func openSocket(_ family: Int32, _ url: MigrationURL) throws(MigrationError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .socket(operation: "socket for", target: url.description, errno: errno) }
        return fd
    }

    /// Writes `head`, then `pages` (gathered: guest pages go out straight from guest memory).
    public func write(_ head: [UInt8], then pages: [UnsafeRawBufferPointer] = [],
                      during: @autoclosure () -> String) throws(MigrationError) {
        if let failure = head.withUnsafeBytes({ sendAll([$0] + pages) }) { throw error(failure, during: during()) }
    }

    /// Fills `buffer` completely (straight into guest memory for pages).
    public func read(into buffer: UnsafeMutableRawBufferPointer, during: @autoclosure () -> String) throws(MigrationError) {
        if let failure = receiveAll(buffer) { throw error(failure, during: during()) }
    }

    /// Reads exactly `count` bytes.
    public func read(count: Int, during: @autoclosure () -> String) throws(MigrationError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if let failure = bytes.withUnsafeMutableBytes({ receiveAll($0) }) { throw error(failure, during: during()) }
        return bytes
    }

    /// Wakes any blocked read or write on this connection (they fail); safe from any thread.
    public func shutdown() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Why a transfer stopped: the peer's end of stream, or an errno.
    enum Failure { case endOfStream, errno(Int32) }

    func sendAll(_ parts: [UnsafeRawBufferPointer]) -> Failure? {
        var vectors = parts.filter { $0.count > 0 }.map {
            iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
        }
        var first = 0
        while first < vectors.count {
            let count = min(vectors.count - first, Int(UIO_MAXIOV))
            let written = vectors.withUnsafeMutableBufferPointer { buffer -> Int in
                var message = msghdr()
                message.msg_iov = buffer.baseAddress! + first
                message.msg_iovlen = count
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                return .errno(errno)
            }
            // Skip what was written; a partly written vector is advanced in place.
            var remaining = written
            while remaining > 0 {
                let length = vectors[first].iov_len
                if remaining >= length {
                    remaining -= length
                    first += 1
                } else {
                    vectors[first].iov_base += remaining
                    vectors[first].iov_len -= remaining
                    remaining = 0
                }
            }
        }
        return nil
    }

    private func receiveAll(_ buffer: UnsafeMutableRawBufferPointer) -> Failure? {
        guard var next = buffer.baseAddress else { return nil }
        var remaining = buffer.count
        while remaining > 0 {
            let n = recv(fd, next, remaining, Int32(MSG_WAITALL))
            if n == 0 { return .endOfStream }
            if n < 0 {
                if errno == EINTR { continue }
                return .errno(errno)
            }
            next += n
            remaining -= n
        }
        return nil
    }

    func error(_ failure: Failure, during: String) -> MigrationError {
        switch failure {
        case .endOfStream: return .connectionLost(during: during, errno: nil)
        case let .errno(err) where err == EAGAIN || err == EWOULDBLOCK: return .timedOut(during: during, seconds: timeoutSeconds)
        case let .errno(err): return .connectionLost(during: during, errno: err)
        }
    }
}
