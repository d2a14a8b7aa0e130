import Foundation
import Synchronization

/// One lifecycle event, as Cloud Hypervisor's event monitor writes it.
public struct VmmEvent: Sendable, Equatable {
    public let secs: UInt64
    public let nanos: UInt32
    public let source: String
    public let event: String
    public let properties: [String: String]?

    /// CH's record: a pretty-printed JSON object (`timestamp`, `source`, `event`, `properties`).
    public var json: String {
        var object: [String: Any] = [
            "timestamp": ["secs": secs, "nanos": nanos],
            "source": source,
            "event": event,
            "properties": properties.map { $0 as Any } ?? NSNull(),
        ]
        object["properties"] = properties.map { $0 as Any } ?? NSNull()
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Publishes lifecycle events: to the `--event-monitor` file or fd (each record followed by a blank
/// line, as CH), and to in-process observers (the D-Bus `Event` signal).
public final class EventMonitor: Sendable {
    private let start = ContinuousClock.now
    private let fd: Int32?
    private let observers = Mutex<[@Sendable (VmmEvent) -> Void]>([])

    /// No sink: events only reach observers.
    public init() { fd = nil }

    /// `path=…` or `fd=…` (CH's `--event-monitor`).
    public init(fd: Int32) { self.fd = fd }

    public static func open(path: String) throws -> EventMonitor {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw VmmError(.badRequest, ["Cannot open event monitor file \(path)", String(cString: strerror(errno))])
        }
        return EventMonitor(fd: fd)
    }

    public func observe(_ observer: @escaping @Sendable (VmmEvent) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    public func emit(_ source: String, _ event: String, _ properties: [String: String]? = nil) {
        let elapsed = ContinuousClock.now - start
        let (secs, attos) = elapsed.components
        let record = VmmEvent(secs: UInt64(max(secs, 0)), nanos: UInt32(attos / 1_000_000_000),
                              source: source, event: event, properties: properties)
        if let fd {
            let text = record.json + "\n\n"
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        }
        for observer in observers.withLock({ $0 }) { observer(record) }
    }
}
