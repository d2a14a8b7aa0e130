import CKVM
import Glibc
import Synchronization

/// Where a guest console's bytes meet the host (CH's console modes; `off` means no device at all).
public enum ConsoleBackend: Sendable, Equatable {
    /// Output discarded, no input.
    case null
    /// The VMM's stdout and stdin (stdin in raw mode while the VMM runs).
    case tty
    /// A new pseudo-terminal; its path is `ConsoleEndpoint.path`.
    case pty
    /// Output appended to a truncated file; no input.
    case file(String)
    /// A UNIX socket the VMM listens on; one client at a time gets output and gives input.
    case socket(String)
}

/// Why a console backend could not be opened.
public enum ConsoleBackendError: Error, CustomStringConvertible, Equatable {
    case openFailed(path: String, errno: Int32)
    case ptyFailed(errno: Int32)
    case socket(UnixSocketError)

    public var description: String {
        switch self {
        case let .openFailed(path, err): return "cannot open console file \(path): \(String(cString: strerror(err)))"
        case let .ptyFailed(err): return "cannot create a pseudo-terminal: \(String(cString: strerror(err)))"
        case let .socket(e): return "console \(e)"
        }
    }
}

/// The host end of a guest console, shared by the serial port and virtio-console: opens the backend,
/// writes guest output without ever blocking for long, and reads input from whichever fd currently
/// provides it.
///
/// Locking: `fds` (the current input/output fds, which change when a socket client comes and goes) is
/// held for the whole of a write, so output from vCPU and device threads never interleaves and never
/// goes to an fd being closed. Reading, accepting and dropping a client happen on one input thread.
public final class ConsoleEndpoint: @unchecked Sendable {
    public let backend: ConsoleBackend
    /// The pty's slave path, the file, or the socket path.
    public let path: String?
    /// The listening socket (`.socket`), else -1. Readable when a client waits to be accepted.
    public let listenFD: Int32
    private let socketFile: UnixSocket.FileIdentity?

    private struct FDs { var input: Int32 = -1, output: Int32 = -1 }
    private let fds: Mutex<FDs>
    /// A pty's slave, held open so that the master never reports a hang-up (EIO, EPOLLHUP in a loop)
    /// while no terminal program is attached.
    private let ptySlave: Int32
    private let savedTermios: termios?
    /// Longest wait for a reader to make room before output is dropped, as on a disconnected line.
    private static let writeTimeoutMs: Int32 = 100

    public init(_ backend: ConsoleBackend) throws(ConsoleBackendError) {
        self.backend = backend
        var current = FDs()
        var path: String?, listenFD: Int32 = -1, ptySlave: Int32 = -1, saved: termios?
        switch backend {
        case .null:
            break
        case .tty:
            current = FDs(input: 0, output: 1)
            if isatty(0) != 0 {
                // Raw input so that keystrokes reach the guest as typed (restored on exit).
                var t = termios()
                if tcgetattr(0, &t) == 0 {
                    saved = t
                    cfmakeraw(&t)
                    t.c_oflag |= tcflag_t(OPOST | ONLCR)
                    tcsetattr(0, TCSANOW, &t)
                }
            }
        case let .file(file):
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .openFailed(path: file, errno: errno) }
            current.output = fd
            path = file
        case .pty:
            var name = [CChar](repeating: 0, count: 128)
            let fd = ckvm_open_pty(&name, name.count)
            guard fd >= 0 else { throw .ptyFailed(errno: errno) }
            var t = termios()
            if tcgetattr(fd, &t) == 0 { cfmakeraw(&t); tcsetattr(fd, TCSANOW, &t) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            let slavePath = String(nulTerminated: name)
            ptySlave = open(slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC)
            current = FDs(input: fd, output: fd)
            path = slavePath
        case let .socket(socketPath):
            do { listenFD = try UnixSocket.listen(at: socketPath, backlog: 1) } catch { throw .socket(error) }
            path = socketPath
        }
        fds = Mutex(current)
        self.path = path
        self.listenFD = listenFD
        socketFile = listenFD >= 0 ? path.flatMap(UnixSocket.fileIdentity) : nil
        self.ptySlave = ptySlave
        savedTermios = saved
    }

    deinit {
        restoreTerminal()
        let current = fds.withLock { $0 }
        if current.output > 2 { close(current.output) }
        if current.input > 2 && current.input != current.output { close(current.input) }
        if ptySlave >= 0 { close(ptySlave) }
        if listenFD >= 0 {
            close(listenFD)
            if let path { UnixSocket.unlink(path, ifStill: socketFile) }
        }
    }

    /// Puts the terminal back as it was (also from signal-driven exits, where deinit may not run).
    public func restoreTerminal() {
        if var t = savedTermios { tcsetattr(0, TCSANOW, &t) }
    }

    /// The fd input comes from now: stdin, the pty master, the socket's client, or -1.
    public var inputFD: Int32 { fds.withLock { $0.input } }

    /// The terminal's size when the backend is a tty, for virtio-console's F_SIZE.
    public var windowSize: (cols: UInt16, rows: UInt16)? {
        guard backend == .tty else { return nil }
        for fd: Int32 in [0, 1] where isatty(fd) != 0 {
            var ws = winsize()
            if ckvm_ioctl_ptr(fd, UInt(TIOCGWINSZ), &ws) == 0 { return (ws.ws_col, ws.ws_row) }
        }
        return nil
    }

    /// `.socket`: takes a waiting connection as the client when none is connected. False when there
    /// was none to take (or one is connected already).
    public func acceptClient() -> Bool {
        guard listenFD >= 0, inputFD < 0, let client = UnixSocket.accept(listenFD) else { return false }
        fds.withLock { $0 = FDs(input: client, output: client) }
        return true
    }

    public enum ReadResult: Equatable {
        case data(Int)
        case wouldBlock
        /// End of input: stdin at EOF, or the socket's client left (it is dropped; accept the next).
        case closed
    }

    /// Reads input into `buffer`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        let fd = inputFD
        guard fd >= 0 else { return .closed }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .data(n) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return .wouldBlock }
            if listenFD >= 0 {
                fds.withLock { $0 = FDs() }
                close(fd)
            }
            return .closed
        }
    }

    /// Writes guest output. When the reader does not make room within a short wait (or is gone), the
    /// rest is dropped: a console must never stall the guest.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard var base = bytes.baseAddress else { return }
        let isSocket = listenFD >= 0
        fds.withLock { current in
            let fd = current.output
            guard fd >= 0 else { return }
            var left = bytes.count
            while left > 0 {
                let n = isSocket ? send(fd, base, left, Int32(MSG_NOSIGNAL)) : Glibc.write(fd, base, left)
                if n > 0 {
                    left -= n
                    base += n
                    continue
                }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&p, 1, Self.writeTimeoutMs) > 0 { continue }
                }
                return
            }
        }
    }
}
