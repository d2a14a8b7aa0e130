import Foundation
import Glibc

/// The host side of Cloud Hypervisor's hybrid vsock, as a user's program would drive it: connect to the
/// VMM's UNIX socket, ask for a guest port with `CONNECT <port>\n`, read `OK <n>\n`, then talk.
public final class HybridVsockClient {
    public let fd: Int32

    public init(socket path: String, port: UInt32, timeout: TimeInterval = 5) throws {
        fd = try unixConnect(path)
        try setTimeout(fd, timeout)
        try writeAll(fd, Array("CONNECT \(port)\n".utf8))
        let line = try readLine(fd)
        guard line.hasPrefix("OK ") else {
            close(fd)
            throw HybridVsockError("expected OK after CONNECT \(port), got \(line.debugDescription)")
        }
    }

    deinit { close(fd) }

    /// Sends `bytes` and reads back as many (the checkguest echoes on its port 1234).
    public func echo(_ bytes: [UInt8]) throws -> [UInt8] {
        try writeAll(fd, bytes)
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while got.count < bytes.count {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { throw HybridVsockError("connection ended after \(got.count) of \(bytes.count) echoed bytes") }
            got += buffer[0..<n]
        }
        return got
    }
}

/// A UNIX socket at `<vsock socket>_<port>` that echoes what the guest sends (guest → host connections).
public final class UnixEchoListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = try unixAddress(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { throw HybridVsockError("cannot listen on \(path): errno \(errno)") }
        let listenFD = fd
        Thread {
            while true {
                let client = accept(listenFD, nil, nil)
                guard client >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = read(client, &buffer, buffer.count)
                    if n <= 0 { break }
                    _ = try? writeAll(client, Array(buffer[0..<n]))
                }
                close(client)
            }
        }.start()
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }
}

public struct HybridVsockError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

private func unixAddress(_ path: String) throws -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw HybridVsockError("socket path too long: \(path)") }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    return address
}

private func unixConnect(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var address = try unixAddress(path)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard connected == 0 else {
        let e = errno
        close(fd)
        throw HybridVsockError("cannot connect to \(path): errno \(e)")
    }
    return fd
}

private func setTimeout(_ fd: Int32, _ seconds: TimeInterval) throws {
    var tv = timeval(tv_sec: Int(seconds), tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw HybridVsockError("write failed: errno \(errno)") }
        sent += n
    }
}

private func readLine(_ fd: Int32) throws -> String {
    var line: [UInt8] = []
    var byte: UInt8 = 0
    while line.count < 128 {
        guard read(fd, &byte, 1) == 1 else { throw HybridVsockError("no answer to CONNECT (got \(line.count) bytes)") }
        if byte == UInt8(ascii: "\n") { break }
        line.append(byte)
    }
    return String(decoding: line, as: UTF8.self)
}
