import CKVM
import Glibc

/// Why a UNIX socket at a path could not be set up.
public enum UnixSocketError: Error, CustomStringConvertible, Equatable {
    case pathTooLong(path: String)
    /// A live process accepts connections on the path.
    case inUse(path: String)
    /// Something that is not a socket sits at the path; it is left alone.
    case notASocket(path: String)
    case failed(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case let .pathTooLong(path):
            return "socket path \(path) is longer than the \(UnixSocket.maxPathLength) bytes a UNIX socket address holds: use a shorter path"
        case let .inUse(path):
            return "socket \(path) is in use by a running process (another VMM?): stop it or choose another path"
        case let .notASocket(path):
            return "socket path \(path) exists and is not a socket: remove it or choose another path"
        case let .failed(operation, path, err):
            return "socket \(path): \(operation) failed: \(String(cString: strerror(err)))"
        }
    }
}

/// UNIX stream sockets at filesystem paths, for device backends (console socket, vsock). Every fd is
/// close-on-exec and non-blocking.
public enum UnixSocket {
    static let maxPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Listens on `path`. A stale socket file (nobody accepts on it) is replaced; a live one is refused,
    /// so two VMMs never steal each other's connections.
    ///
    /// `takeOver`: a live listener is replaced too — for the destination of a same-host migration, which
    /// must own the path before its source (still listening) exits. The source then leaves the path alone
    /// (`unlinkIfOwned`).
    public static func listen(at path: String, backlog: Int32 = 16, takeOver: Bool = false) throws(UnixSocketError) -> Int32 {
        var addr = try address(path)
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
            if !takeOver, let fd = try? connect(to: path) {
                close(fd)
                throw .inUse(path: path)
            }
            Glibc.unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .failed(operation: "create", path: path, errno: errno) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let err = errno
            close(fd)
            throw .failed(operation: "bind", path: path, errno: err)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let err = errno
            close(fd)
            Glibc.unlink(path)
            throw .failed(operation: "listen", path: path, errno: err)
        }
        return fd
    }

    /// Connects to the listener at `path` (fails at once when nobody listens or its backlog is full).
    public static func connect(to path: String) throws(UnixSocketError) -> Int32 {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .failed(operation: "create", path: path, errno: errno) }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            let err = errno
            close(fd)
            throw .failed(operation: "connect", path: path, errno: err)
        }
        return fd
    }

    /// Accepts one pending connection (non-blocking, close-on-exec), or nil when none is pending.
    public static func accept(_ listener: Int32) -> Int32? {
        while true {
            let fd = ckvm_accept_nonblock(listener)
            if fd >= 0 { return fd }
            if errno != EINTR { return nil }
        }
    }

    private static func address(_ path: String) throws(UnixSocketError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= maxPathLength else { throw .pathTooLong(path: path) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    /// The file a socket was bound to (device and inode), to recognise it later.
    public struct FileIdentity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    public static func fileIdentity(_ path: String) -> FileIdentity? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Removes the socket file at `path` only if it is still the one this process bound (`identity`),
    /// not one another process bound there since (the destination of a same-host migration).
    public static func unlink(_ path: String, ifStill identity: FileIdentity?) {
        guard let identity, fileIdentity(path) == identity else { return }
        Glibc.unlink(path)
    }
}
