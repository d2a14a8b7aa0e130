import Glibc
import Synchronization

/// The destination's listening socket: accepts exactly one migration connection.
///
/// A UNIX socket file is created at bind time (a stale socket file from an earlier run is replaced, any
/// other file is left alone) and removed once the connection is accepted or the listener is closed.
public final class Listener: Sendable {
    private let fd: Int32
    public let url: MigrationURL
    private let unixPath = Mutex<String?>(nil)

    public init(_ url: MigrationURL) throws(MigrationError) {
        self.url = url
        switch url {
        case let .unix(path):
            try Self.removeStaleSocket(path, url)
            let fd = try Connection.openSocket(AF_UNIX, url)
            guard SocketAddress.withUnix(path, { bind(fd, $0, $1) }) == 0 else {
                let err = errno
                Glibc.close(fd)
                throw .socket(operation: "bind", target: url.description, errno: err)
            }
            self.fd = fd
            unixPath.withLock { $0 = path }
        case let .tcp(host, port):
            self.fd = try Self.bindTCP(host: host, port: port, url)
        }
        guard listen(fd, 1) == 0 else {
            let err = errno
            Glibc.close(fd)
            throw .socket(operation: "listen on", target: url.description, errno: err)
        }
    }

    deinit {
        Glibc.close(fd)
        removeSocketFile()
    }

    /// Blocks until a source connects. After `close()` from another thread it throws `.cancelled`.
    public func accept(timeoutSeconds: Int = 30) throws(MigrationError) -> Connection {
        while true {
            let client = Glibc.accept(fd, nil, nil)
            if client >= 0 {
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                removeSocketFile()
                return Connection(fd: client, timeoutSeconds: timeoutSeconds)
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EINVAL: throw .cancelled("the listener on \(url) was closed")
            default: throw .socket(operation: "accept on", target: url.description, errno: errno)
            }
        }
    }

    /// Stops listening; a thread blocked in `accept` wakes up with `.cancelled`. Safe from any thread.
    public func close() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
        removeSocketFile()
    }

    private func removeSocketFile() {
        if let path = unixPath.withLock({ path in defer { path = nil }; return path }) { unlink(path) }
    }

    private static func removeStaleSocket(_ path: String, _ url: MigrationURL) throws(MigrationError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw .socket(operation: "bind", target: url.description, errno: EEXIST)
        }
        unlink(path)
    }

    private static func bindTCP(host: String, port: UInt16, _ url: MigrationURL) throws(MigrationError) -> Int32 {
        var lastErrno: Int32 = EADDRNOTAVAIL
        for address in try SocketAddress.tcp(host: host, port: port, passive: true, url: url.description) {
            let fd = try Connection.openSocket(address.family, url)
            var on: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            if address.withSockaddr({ bind(fd, $0, $1) }) == 0 { return fd }
            lastErrno = errno
            Glibc.close(fd)
        }
        throw .socket(operation: "bind", target: url.description, errno: lastErrno)
    }
}
