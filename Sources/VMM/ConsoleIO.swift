import Glibc
import Config
import Devices
import Foundation
import Synchronization
import Virtio

/// The host side of the serial console: where guest output goes and where guest input comes from.
/// The backend itself (tty, pty, file, socket) is a `ConsoleEndpoint`, shared with virtio-console;
/// this adds the blocking input thread the serial port needs. It lives as long as the VMM, so a guest
/// reboot keeps it.
public final class ConsoleIO: SerialSink, @unchecked Sendable {
    public let mode: ConsoleMode
    /// Path of the pty or socket, for the log and `vm.info`.
    public var path: String? { endpoint.path }

    private let endpoint: ConsoleEndpoint
    private let target = Mutex<(@Sendable ([UInt8]) -> Int)?>(nil)
    private var inputThread: Thread?

    public init(config: ConsoleConfig) throws {
        mode = config.mode
        endpoint = try ConsoleEndpoint(Self.backend(config))
    }

    /// The endpoint kind a console configuration asks for (`Off` opens nothing, as `Null`).
    public static func backend(_ config: ConsoleConfig) -> ConsoleBackend {
        switch config.mode {
        case .Off, .Null: return .null
        case .Tty: return .tty
        case .Pty: return .pty
        case .File: return .file(config.file ?? "")
        case .Socket: return .socket(config.socket ?? "")
        }
    }

    /// Restores the terminal (also called from signal-driven exits, where deinit may not run).
    public func restoreTerminal() { endpoint.restoreTerminal() }

    // MARK: guest output

    public func write(_ bytes: UnsafeRawBufferPointer) { endpoint.write(bytes) }

    // MARK: guest input

    /// Sets where input goes (the current VM's serial port); `deliver` returns how many bytes it took.
    public func attach(_ deliver: (@Sendable ([UInt8]) -> Int)?) {
        target.withLock { $0 = deliver }
        startInputThreadIfNeeded()
    }

    private func startInputThreadIfNeeded() {
        guard inputThread == nil, endpoint.inputFD >= 0 || endpoint.listenFD >= 0 else { return }
        let thread = Thread { [self] in self.inputLoop() }
        thread.name = "console-input"
        inputThread = thread
        thread.start()
    }

    private static func waitReadable(_ fd: Int32) {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&p, 1, -1) < 0 && errno == EINTR {}
    }

    private func inputLoop() {
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            if endpoint.listenFD >= 0 && endpoint.inputFD < 0 {
                Self.waitReadable(endpoint.listenFD)
                _ = endpoint.acceptClient()
                continue
            }
            Self.waitReadable(endpoint.inputFD)
            let result = buffer.withUnsafeMutableBytes { endpoint.read(into: $0) }
            guard case let .data(n) = result else {
                if result == .closed && endpoint.listenFD < 0 { return }   // EOF on stdin: no more input
                continue   // nothing yet, or the socket's client left: wait for the next one
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
