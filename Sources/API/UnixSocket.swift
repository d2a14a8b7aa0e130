import Glibc

/// The socket file of a path-bound API server: created with mode 0600 from the start (fchmod before bind,
/// so no other user can ever connect), a stale file of a dead server replaced, a live server's left alone.
struct UnixSocket {
    /// `sockaddr_un.sun_path` holds 108 bytes including the terminating NUL.
    static let maxPathLength = 107

    let fd: Int32
    let path: String
    /// Device and inode of the file we bound, so `remove()` never deletes a successor's socket.
    private let identity: (dev: UInt, ino: UInt)

    /// Binds a new stream socket at `path` (not yet listening: NIO calls listen).
    static func bind(path: String) throws(APIServerError) -> UnixSocket {
        guard path.utf8.count <= maxPathLength else { throw .pathTooLong(path: path) }
        try makeDirectories(parent(of: path))
        try removeStale(path)

        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .cannotBind(path: path, errno: errno) }
        guard fchmod(fd, 0o600) == 0, withAddress(path, { Glibc.bind(fd, $0, $1) }) == 0 else {
            let code = errno
            close(fd)
            throw code == EADDRINUSE ? .socketInUse(path: path) : .cannotBind(path: path, errno: code)
        }
        var st = stat()
        guard lstat(path, &st) == 0 else {
            let code = errno
            close(fd)
            throw .cannotBind(path: path, errno: code)
        }
        return UnixSocket(fd: fd, path: path, identity: (UInt(st.st_dev), UInt(st.st_ino)))
    }

    /// Unlinks the socket file if it is still the one we bound.
    func remove() {
        var st = stat()
        if lstat(path, &st) == 0, UInt(st.st_dev) == identity.dev, UInt(st.st_ino) == identity.ino {
            unlink(path)
        }
    }

    /// Checks that an inherited descriptor is a stream socket before NIO takes it over.
    static func validate(fd: Int32) throws(APIServerError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .invalidDescriptor(fd: fd, reason: errnoText(errno)) }
        guard st.st_mode & S_IFMT == S_IFSOCK else { throw .invalidDescriptor(fd: fd, reason: "not a socket") }
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else {
            throw .invalidDescriptor(fd: fd, reason: "not a stream socket")
        }
    }

    /// A socket file nobody answers on is left over from a crashed server: replace it. Anything else at
    /// the path is refused rather than deleted.
    private static func removeStale(_ path: String) throws(APIServerError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard st.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }

        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw .cannotBind(path: path, errno: errno) }
        let result = withAddress(path) { connect(probe, $0, $1) }
        let code = errno
        close(probe)
        if result == 0 || code == EAGAIN || code == EINPROGRESS { throw .socketInUse(path: path) }
        guard code == ECONNREFUSED else { throw .cannotBind(path: path, errno: code) }
        guard unlink(path) == 0 || errno == ENOENT else { throw .cannotBind(path: path, errno: errno) }
    }

    /// `mkdir -p` with mode 0700 for what it creates (the default `/run/user/{uid}` may not exist yet).
    private static func makeDirectories(_ dir: String) throws(APIServerError) {
        var st = stat()
        guard !dir.isEmpty, stat(dir, &st) != 0 else { return }
        let up = parent(of: dir)
        if up != dir { try makeDirectories(up) }
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw .cannotCreateDirectory(path: dir, errno: errno)
        }
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (i, byte) in path.utf8.enumerated() { bytes[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}

func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}
