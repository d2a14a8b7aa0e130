import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A request as the stub server received it.
struct RecordedRequest: Sendable, Equatable {
    var method: String
    var path: String
    var headers: [String: String]
    var body: Data

    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
}

/// A canned answer.
struct CannedResponse: Sendable {
    var status: Int
    var body: String?

    static let noContent = CannedResponse(status: 204, body: nil)
    static func ok(_ body: String) -> CannedResponse { CannedResponse(status: 200, body: body) }
    static func error(_ status: Int, _ chain: [String]) -> CannedResponse {
        let body = String(decoding: try! JSONEncoder().encode(chain), as: UTF8.self)
        return CannedResponse(status: status, body: body)
    }
}

/// A minimal stand-in for Cloud Hypervisor's API server on a temporary UNIX socket: it records each request
/// (one per connection, as ch-remote sends them) and answers with whatever `respond` returns. Plain POSIX
/// sockets on a thread, so the tests do not depend on the HTTP stack under test.
final class StubCHServer: @unchecked Sendable {
    let socketPath: String
    private let listener: Int32
    private let lock = NSLock()
    private var recorded: [RecordedRequest] = []
    private let respond: @Sendable (RecordedRequest) -> CannedResponse

    init(respond: @escaping @Sendable (RecordedRequest) -> CannedResponse) throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("ch-stub-\(getpid())-\(UUID().uuidString.prefix(8)).sock").path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8.prefix(raw.count - 1))
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        socketPath = path
        listener = fd
        self.respond = respond
        // The thread keeps the server alive until `stop()` makes accept fail.
        Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                serve(client)
            }
        }.start()
    }

    var requests: [RecordedRequest] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    /// Stops accepting and removes the socket file.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(socketPath)
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        guard let request = Self.readRequest(client) else { return }
        lock.lock()
        recorded.append(request)
        lock.unlock()
        let answer = respond(request)
        var text = "HTTP/1.1 \(answer.status) X\r\nServer: stub\r\n"
        if let body = answer.body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            text += "\r\n"
        }
        _ = text.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    private static func readRequest(_ client: Int32) -> RecordedRequest? {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Data("\r\n\r\n".utf8)
        while true {
            if let end = data.range(of: separator) {
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                let requestLine = head[0].split(separator: " ")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                if data.count - end.upperBound >= length, requestLine.count >= 2 {
                    let body = data[end.upperBound..<(end.upperBound + length)]
                    return RecordedRequest(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers,
                                           body: Data(body))
                }
            }
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            data.append(contentsOf: buffer[..<n])
        }
    }
}
