import Glibc
import Config
import Devices
import Foundation
import Hypervisor
import Synchronization

/// Why a console could not be attached to the host.
public enum ConsoleError: Error, CustomStringConvertible {
    case openFailed(path: String, errno: Int32)
    case socketFailed(path: String, errno: Int32)
    case ptyFailed(errno: Int32)

    public var description: String {
        switch self {
        case let .openFailed(path, err): return "cannot open console file \(path): \(String(cString: strerror(err)))"
        case let .socketFailed(path, err): return "cannot listen on console socket \(path): \(String(cString: strerror(err)))"
        case let .ptyFailed(err): return "cannot create a pseudo-terminal: \(String(cString: strerror(err)))"
        }
    }
}

/// The host side of a guest console (the serial port today, virtio-console later): where guest output
/// goes and where guest input comes from. It lives as long as the VMM, so a guest reboot keeps it.
public final class ConsoleIO: SerialSink, @unchecked Sendable {
    public let mode: ConsoleMode
    /// Path of the pty or socket, for the log and `vm.info`.
    public private(set) var path: String?

    private let outputFD = Mutex<Int32>(-1)
    private var inputFD: Int32 = -1
    private var listenFD: Int32 = -1
    private var savedTermios: termios?
    private let target = Mutex<(@Sendable ([UInt8]) -> Int)?>(nil)
    private var inputThread: Thread?

    public init(config: ConsoleConfig) throws {
        mode = config.mode
        switch config.mode {
        case .Off, .Null:
            break
        case .Tty:
            outputFD.withLock { $0 = 1 }
            inputFD = 0
            if isatty(0) != 0 {
                // Raw input so that keystrokes reach the guest as typed (restored on exit).
                var t = termios()
                if tcgetattr(0, &t) == 0 {
                    savedTermios = t
                    cfmakeraw(&t)
                    t.c_oflag |= tcflag_t(OPOST | ONLCR)
                    tcsetattr(0, TCSANOW, &t)
                }
            }
        case .File:
            let file = config.file ?? ""
            let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw ConsoleError.openFailed(path: file, errno: errno) }
            outputFD.withLock { $0 = fd }
            path = file
        case .Pty:
            var name = [CChar](repeating: 0, count: 128)
            let fd = ckvm_open_pty(&name, name.count)
            guard fd >= 0 else { throw ConsoleError.ptyFailed(errno: errno) }
            var t = termios()
            if tcgetattr(fd, &t) == 0 { cfmakeraw(&t); tcsetattr(fd, TCSANOW, &t) }
            outputFD.withLock { $0 = fd }
            inputFD = fd
            path = String(cString: name)
        case .Socket:
            let socketPath = config.socket ?? ""
            listenFD = try Self.listen(on: socketPath)
            path = socketPath
        }
    }

    deinit {
        if var t = savedTermios { tcsetattr(0, TCSANOW, &t) }
        let fd = outputFD.withLock { $0 }
        if fd > 2 { close(fd) }
        if listenFD >= 0 {
            close(listenFD)
            if let path { unlink(path) }
        }
    }

    /// Restores the terminal (also called from signal-driven exits, where deinit may not run).
    public func restoreTerminal() {
        if var t = savedTermios { tcsetattr(0, TCSANOW, &t) }
    }

    private static func listen(on path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ConsoleError.socketFailed(path: path, errno: errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw ConsoleError.socketFailed(path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        unlink(path)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard ok, Glibc.listen(fd, 1) == 0 else {
            let err = errno
            close(fd)
            throw ConsoleError.socketFailed(path: path, errno: err)
        }
        return fd
    }

    // MARK: guest output

    public func write(_ bytes: UnsafeRawBufferPointer) {
        let fd = outputFD.withLock { $0 }
        guard fd >= 0, var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, base, left)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return   // the reader went away: drop output, as a disconnected serial line does
            }
            left -= n
            base += n
        }
    }

    // MARK: guest input

    /// Sets where input goes (the current VM's serial port); `deliver` returns how many bytes it took.
    public func attach(_ deliver: (@Sendable ([UInt8]) -> Int)?) {
        target.withLock { $0 = deliver }
        startInputThreadIfNeeded()
    }

    private func startInputThreadIfNeeded() {
        guard inputThread == nil, inputFD >= 0 || listenFD >= 0 else { return }
        let thread = Thread { [self] in self.inputLoop() }
        thread.name = "console-input"
        inputThread = thread
        thread.start()
    }

    private func inputLoop() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            if listenFD >= 0 && inputFD < 0 {
                let client = accept(listenFD, nil, nil)
                if client < 0 { if errno == EINTR { continue }; return }
                inputFD = client
                outputFD.withLock { $0 = client }
            }
            let n = read(inputFD, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                if listenFD >= 0 {
                    // Socket client left: wait for the next one.
                    outputFD.withLock { $0 = -1 }
                    close(inputFD)
                    inputFD = -1
                    continue
                }
                return   // EOF on stdin/pty: no more input
            }
            var pending = Array(buffer[0..<n])
            // Nothing is dropped: when the UART FIFO is full, wait for the guest to drain it.
            while !pending.isEmpty {
                let taken = target.withLock { $0?(pending) } ?? pending.count
                pending.removeFirst(taken)
                if !pending.isEmpty { usleep(1000) }
            }
        }
    }
}
