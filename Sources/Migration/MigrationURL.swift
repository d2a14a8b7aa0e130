/// A migration endpoint as CH spells it: `unix:/path` or `tcp:host:port` (IPv6 as `tcp:[addr]:port`).
public enum MigrationURL: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: UInt16)

    public init(_ text: String) throws(MigrationError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw .invalidURL(text, reason: "the socket path is empty") }
            // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
            guard path.utf8.count < 108 else {
                throw .invalidURL(text, reason: "the socket path is \(path.utf8.count) bytes; UNIX sockets allow at most 107")
            }
            self = .unix(path: path)
        } else if text.hasPrefix("tcp:") {
            let address = text.dropFirst(4)
            guard let colon = address.lastIndex(of: ":") else {
                throw .invalidURL(text, reason: "the port is missing")
            }
            var host = String(address[..<colon])
            let portText = address[address.index(after: colon)...]
            guard let port = UInt16(portText) else {
                throw .invalidURL(text, reason: "'\(portText)' is not a port number (0…65535)")
            }
            if host.hasPrefix("[") {
                guard host.hasSuffix("]"), host.count > 2 else {
                    throw .invalidURL(text, reason: "an IPv6 address must be written [addr]")
                }
                host = String(host.dropFirst().dropLast())
            } else if host.contains(":") {
                throw .invalidURL(text, reason: "an IPv6 address must be written in brackets: tcp:[\(host)]:\(port)")
            }
            guard !host.isEmpty else { throw .invalidURL(text, reason: "the host is empty") }
            self = .tcp(host: host, port: port)
        } else {
            throw .invalidURL(text, reason: "unknown scheme")
        }
    }

    public var description: String {
        switch self {
        case let .unix(path): return "unix:\(path)"
        case let .tcp(host, port): return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        }
    }
}
