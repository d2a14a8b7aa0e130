/// Why the API server could not start. Each message names the socket and what to do about it, since it
/// is printed to the user as the reason the VMM refused to start.
public enum APIServerError: Error, Equatable, CustomStringConvertible {
    /// Another live server answers on this path (connecting to it succeeded).
    case socketInUse(path: String)
    /// Something that is not a socket sits at the path; we never delete it.
    case notASocket(path: String)
    /// `sockaddr_un` holds at most 107 bytes of path.
    case pathTooLong(path: String)
    /// The socket's directory could not be created.
    case cannotCreateDirectory(path: String, errno: Int32)
    /// socket/bind/listen failed (e.g. the directory is not writable).
    case cannotBind(path: String, errno: Int32)
    /// The inherited descriptor is not a usable stream socket.
    case invalidDescriptor(fd: Int32, reason: String)
    /// The server is already running.
    case alreadyStarted

    public var description: String {
        switch self {
        case let .socketInUse(path):
            return "API socket \(path) is in use by another running server"
        case let .notASocket(path):
            return "cannot use \(path) as the API socket: a file that is not a socket exists there"
        case let .pathTooLong(path):
            return "API socket path \(path) is too long (at most \(UnixSocket.maxPathLength) bytes)"
        case let .cannotCreateDirectory(path, code):
            return "cannot create the API socket directory \(path): \(errnoText(code))"
        case let .cannotBind(path, code):
            return "cannot bind the API socket \(path): \(errnoText(code))"
        case let .invalidDescriptor(fd, reason):
            return "cannot use file descriptor \(fd) as the API socket: \(reason)"
        case .alreadyStarted:
            return "the API server is already running"
        }
    }
}
