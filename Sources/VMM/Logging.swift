import Glibc
import Foundation
import Logging

/// Log lines to a file descriptor (stderr or `--log-file`), one `write(2)` per line so threads never interleave.
public struct FDLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let fd: Int32
    private let label: String

    public init(label: String, fd: Int32, level: Logger.Level) {
        self.label = label
        self.fd = fd
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        let elapsed = ProcessInfo.processInfo.systemUptime - FDLogHandler.start
        let text = String(format: "cloud-hypervisor: %10.6fs: <%@> %@: %@\n",
                          elapsed, Thread.current.name.flatMap { $0.isEmpty ? nil : $0 } ?? "main", "\(level)".uppercased(), "\(message)")
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    nonisolated(unsafe) static var start = ProcessInfo.processInfo.systemUptime

    /// Makes log timestamps count from now (call first thing in main).
    public static func markProcessStart() { start = ProcessInfo.processInfo.systemUptime }
}
