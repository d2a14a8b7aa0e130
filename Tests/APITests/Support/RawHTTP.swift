import Foundation
import Glibc

/// One HTTP/1.1 client connection over a UNIX socket, at the byte level, so tests can send exactly what
/// they mean (pipelined requests, garbage, half a request) and read responses one by one. Blocking, with
/// a receive timeout so a wedged server fails the test instead of hanging it.
final class RawHTTP {
    struct Reply {
        let status: Int
        /// Header names lowercased.
        let headers: [String: String]
        let body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) }
        /// CH's error body: a JSON array of strings.
        var errorChain: [String]? { json as? [String] }
        var object: [String: Any]? { json as? [String: Any] }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let fd: Int32
    private var buffer: [UInt8] = []

    init(socket path: String, timeout: TimeInterval = 10) throws {
        fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (i, byte) in path.utf8.enumerated() { bytes[i] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw Failure(description: "connect \(path): \(String(cString: strerror(code)))")
        }
    }

    deinit { Glibc.close(fd) }

    /// Closes the connection now (a client hanging up).
    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }
    }

    /// A request as curl would send it.
    static func request(_ method: String, _ endpoint: String, body: String? = nil, close: Bool = false) -> String {
        var text = "\(method) /api/v1/\(endpoint) HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
        if close { text += "Connection: close\r\n" }
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            text += "\r\n"
        }
        return text
    }

    /// Sends one request and reads its response.
    func call(_ method: String, _ endpoint: String, body: String? = nil) throws -> Reply {
        try send(Self.request(method, endpoint, body: body))
        return try readReply()
    }

    /// Reads the next response (Content-Length framed; read to EOF when the server closes instead).
    func readReply() throws -> Reply {
        let (status, headers) = try readHead()
        if let length = headers["content-length"].flatMap(Int.init) {
            while buffer.count < length {
                guard try fill() else { throw Failure(description: "connection closed inside a body") }
            }
            let body = Array(buffer[..<length])
            buffer.removeFirst(length)
            return Reply(status: status, headers: headers, body: body)
        }
        if status == 204 || status == 304 { return Reply(status: status, headers: headers, body: []) }
        while try fill() {}
        defer { buffer.removeAll() }
        return Reply(status: status, headers: headers, body: buffer)
    }

    /// Reads a status line and headers only (the answer to HEAD has no body).
    func readHead() throws -> (status: Int, headers: [String: String]) {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var end = buffer.firstRange(of: separator)?.lowerBound
        while end == nil {
            guard try fill() else { throw Failure(description: "connection closed before a response") }
            end = buffer.firstRange(of: separator)?.lowerBound
        }
        let headText = String(decoding: buffer[..<end!], as: UTF8.self)
        buffer.removeFirst(end! + separator.count)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw Failure(description: "bad status line in \(headText)")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers)
    }

    /// True when the server has closed the connection (EOF within the receive timeout).
    func isClosedByServer() -> Bool {
        (try? fill()) == false
    }

    /// Reads more bytes; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            if errno == ECONNRESET { return false }
            throw Failure(description: "recv: \(String(cString: strerror(errno)))")
        }
        buffer += chunk[..<n]
        return n > 0
    }
}
