import CKVM
import Foundation
import Glibc
import Hypervisor

/// The dedicated OS thread that serves one device: an epoll loop over the device's file descriptors
/// (queue eventfds, TAP, sockets), with a pause handshake for snapshots and migration.
///
/// Handlers run on this thread only, one at a time, so a device needs no locking between them. The
/// controller's `pause()` returns once the thread is parked between handlers: the request a handler
/// was serving has completed, and nothing touches guest memory until `resume()`.
public final class DeviceThread: @unchecked Sendable {
    public typealias Handler = (_ events: UInt32) -> Void

    private enum State { case running, pauseRequested, paused, stopping, stopped }

    public let name: String
    private let epollFD: Int32
    private let control: EventFD
    private var handlers: [Int32: Handler] = [:]
    private let cond = NSCondition()
    private var state: State = .running
    private var thread: Thread?
    private let onResume: () -> Void
    private let onPause: () -> Void
    private let onExit: () -> Void

    /// `onPause` runs on the device thread when a pause is requested, before it parks (and before
    /// `pause()` returns); `onResume` after every `resume()` (never while paused); `onExit` as the
    /// thread leaves its loop (before `stop()` returns).
    public init(name: String, onPause: @escaping () -> Void = {}, onResume: @escaping () -> Void = {},
                onExit: @escaping () -> Void = {}) throws {
        self.name = name
        self.onPause = onPause
        self.onResume = onResume
        self.onExit = onExit
        epollFD = ckvm_epoll_create()
        guard epollFD >= 0 else { throw VirtioError.backend("\(name): epoll_create1 failed: \(String(cString: strerror(errno)))") }
        control = try EventFD()
        try add(control.fd, events: CKVM_EPOLLIN) { _ in }
    }

    deinit {
        stop()
        close(epollFD)
    }

    /// Watches `fd` (level-triggered). Before `start`, or from a handler on this thread.
    public func watch(_ fd: Int32, events: UInt32 = CKVM_EPOLLIN, handler: @escaping Handler) throws {
        try add(fd, events: events, handler: handler)
    }

    /// Changes the events watched on `fd` (e.g. add EPOLLOUT while a socket has queued output).
    public func modify(_ fd: Int32, events: UInt32) throws {
        guard ckvm_epoll_ctl(epollFD, 3, fd, events) == 0 else {
            throw VirtioError.backend("\(name): epoll_ctl(MOD, \(fd)) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Stops watching `fd` (from a handler on this thread, or before `start`).
    public func unwatch(_ fd: Int32) {
        _ = ckvm_epoll_ctl(epollFD, 2, fd, 0)
        handlers[fd] = nil
    }

    private func add(_ fd: Int32, events: UInt32, handler: @escaping Handler) throws {
        guard ckvm_epoll_ctl(epollFD, 1, fd, events) == 0 else {
            throw VirtioError.backend("\(name): epoll_ctl(ADD, \(fd)) failed: \(String(cString: strerror(errno)))")
        }
        handlers[fd] = handler
    }

    public func start() {
        let t = Thread { [unowned self] in self.loop() }
        t.name = name
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    /// Returns once the thread is parked (or has stopped). Blocks; never spins.
    public func pause() {
        cond.lock()
        defer { cond.unlock() }
        guard thread != nil, state == .running else { return }
        state = .pauseRequested
        try? control.write()
        while state == .pauseRequested { cond.wait() }
    }

    public func resume() {
        cond.lock()
        defer { cond.unlock() }
        guard state == .paused || state == .pauseRequested else { return }
        state = .running
        cond.broadcast()
    }

    /// Makes the thread leave its loop and waits for it. Idempotent; safe from any thread but this one.
    public func stop() {
        cond.lock()
        if thread == nil || state == .stopped { state = .stopped; cond.unlock(); return }
        state = .stopping
        cond.broadcast()
        cond.unlock()
        try? control.write()
        cond.lock()
        while state != .stopped { cond.wait() }
        cond.unlock()
    }

    /// Parks while paused; false once asked to stop. Runs `onPause` before parking and `onResume`
    /// after a pause ended.
    private func checkpoint() -> Bool {
        cond.lock()
        if state == .pauseRequested {
            cond.unlock()
            onPause()
            cond.lock()
        }
        var wasPaused = false
        while state == .pauseRequested || state == .paused {
            state = .paused
            wasPaused = true
            cond.broadcast()
            cond.wait()
        }
        let go = state == .running
        cond.unlock()
        if go && wasPaused { onResume() }
        return go
    }

    private func loop() {
        var fds = [Int32](repeating: 0, count: 16)
        var events = [UInt32](repeating: 0, count: 16)
        while checkpoint() {
            let n = ckvm_epoll_wait(epollFD, &fds, &events, 16, -1)
            if n < 0 { if errno == EINTR { continue } else { break } }
            for k in 0..<Int(n) {
                let fd = fds[k]
                if fd == control.fd { _ = try? control.read(); continue }
                // A pause or stop requested meanwhile wins over further handlers.
                cond.lock(); let running = state == .running; cond.unlock()
                guard running else { break }
                handlers[fd]?(events[k])
            }
        }
        onExit()
        cond.lock()
        state = .stopped
        cond.broadcast()
        cond.unlock()
    }
}
