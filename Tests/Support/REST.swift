import Foundation

/// Cloud Hypervisor REST calls through `curl --unix-socket`: a client we did not write.
public struct RESTClient: Sendable {
    public let socket: String

    public init(socket: String) { self.socket = socket }

    public struct Reply: Sendable {
        public let status: Int
        public let body: String
        public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    }

    /// `curl -X METHOD http://localhost/api/v1/ENDPOINT [-d BODY]`; returns status and body.
    @discardableResult
    public func call(_ method: String, _ endpoint: String, _ body: String? = nil, timeout: Int = 60) throws -> Reply {
        var args = ["-s", "-m", "\(timeout)", "--unix-socket", socket, "-X", method,
                    "-w", "\n%{http_code}", "http://localhost/api/v1/\(endpoint)"]
        if let body {
            args += ["-H", "Content-Type: application/json", "-H", "Accept: application/json", "-d", body]
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let nl = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: nl)...]) else {
            return Reply(status: 0, body: text)
        }
        return Reply(status: status, body: String(text[..<nl]))
    }

    public func put(_ endpoint: String, _ body: String? = nil) throws -> Reply { try call("PUT", endpoint, body) }
    public func get(_ endpoint: String) throws -> Reply { try call("GET", endpoint) }

    /// Waits until the server answers vmm.ping.
    public func waitUntilUp(timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? get("vmm.ping"))?.status == 200 { return }
            usleep(20_000)
        }
        throw GuestWaitError(what: "API socket \(socket) did not answer vmm.ping within \(timeout)s", output: "")
    }
}

/// A scratch directory for one test, removed afterwards.
public final class ScratchDirectory {
    public let url: URL
    public var path: String { url.path }

    public init(_ name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        url = FileManager.default.temporaryDirectory.appendingPathComponent("swiftch-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}
