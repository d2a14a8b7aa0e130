import Foundation
import TestSupport

/// Records the API's `Event` signals with `busctl monitor` (a bus monitor, so it sees every signal that
/// crosses the bus, from before the service even exists).
final class SignalRecorder {
    private let monitor: GuestProcess

    init(bus: PrivateBus, busctl: String) throws {
        monitor = try GuestProcess(executable: busctl, arguments: [
            "--address=\(bus.address)", "--json=short", "monitor",
            "--match", "type='signal',interface='\(BusClient.interface)',member='Event'",
        ])
        try monitor.waitFor("Monitoring bus message stream", timeout: 10)
    }

    /// Each `Event` signal's argument so far, parsed (CH's event record), in arrival order.
    var events: [[String: Any]] {
        monitor.allLines.compactMap { line in
            guard line.hasPrefix("{"),
                  let message = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  message["member"] as? String == "Event",
                  let payload = message["payload"] as? [String: Any],
                  payload["type"] as? String == "s",
                  let record = (payload["data"] as? [Any])?.first as? String else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any]
        }
    }

    /// The `event` names received so far.
    var names: [String] { events.compactMap { $0["event"] as? String } }

    /// Waits until an event named `name` has arrived.
    func waitFor(_ name: String, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !names.contains(name) {
            if Date() > deadline {
                throw TestFailure("no Event signal \"\(name)\" within \(timeout)s; got \(names)", output: monitor.allOutput)
            }
            usleep(20_000)
        }
    }

    func stop() { monitor.stop(grace: 1) }
}
