import Foundation
import Glibc

/// A slow link for tests: accepts one connection on a UNIX socket and forwards it to another, carrying the
/// source-to-destination direction at `bytesPerSecond` (answers flow back unthrottled).
final class ThrottledProxy: @unchecked Sendable {
    private let listenFD: Int32

    init(listen path: String, forwardTo target: String, bytesPerSecond: Int) throws {
        listenFD = try Self.unixSocket(path) { bind($0, $1, $2) == 0 && listen($0, 1) == 0 }
        let listenFD = listenFD
        Thread {
            let inbound = accept(listenFD, nil, nil)
            guard inbound >= 0, let outbound = try? Self.unixSocket(target, { connect($0, $1, $2) == 0 }) else { return }
            Thread { Self.pump(from: outbound, to: inbound, bytesPerSecond: nil) }.start()
            Self.pump(from: inbound, to: outbound, bytesPerSecond: bytesPerSecond)
        }.start()
    }

    deinit { close(listenFD) }

    /// Copies until either side closes, then closes both (so the peers see the link drop). Paced by when each
    /// chunk is due rather than by a sleep per chunk, so that sleep overshoots do not make the link slower;
    /// an idle link earns at most 50 ms of credit.
    private static func pump(from: Int32, to: Int32, bytesPerSecond: Int?) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var due = ContinuousClock.now
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            let sent = buffer.withUnsafeBytes { send(to, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
            if sent != n { break }
            guard let bytesPerSecond else { continue }
            due = max(due, .now - .milliseconds(50)) + .microseconds(n * 1_000_000 / bytesPerSecond)
            let ahead = ContinuousClock.now.duration(to: due)
            if ahead > .zero { usleep(useconds_t(ahead / .microseconds(1))) }
        }
        shutdown(from, Int32(SHUT_RDWR))
        shutdown(to, Int32(SHUT_RDWR))
    }

    private static func unixSocket(_ path: String, _ use: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { use(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok else {
            close(fd)
            throw LiveTestError("proxy socket \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}
