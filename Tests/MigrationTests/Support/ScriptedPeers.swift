import Foundation
@testable import Migration

/// A destination that follows the protocol up to a chosen point and then fails the way a dying or
/// confused VMM would: the source must survive each of these.
final class ScriptedDestination: @unchecked Sendable {
    enum Fault: CaseIterable {
        case closeOnAccept, closeAtConfig, closeDuringMemory, closeAtState, refuseComplete
        /// Acknowledges Config, then reads nothing more until `release()`.
        case stallAfterConfig
    }

    private let finished = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)

    init(path: String, fault: Fault) throws {
        let listener = try Listener(.unix(path: path))
        Thread { [self] in
            if let link = try? listener.accept() { try? play(fault, on: link) }
            finished.signal()
        }.start()
    }

    /// Lets a stalled script end (its connection closes).
    func release() { released.signal() }

    func wait(timeout: TimeInterval = 30) -> Bool { finished.wait(timeout: .now() + timeout) == .success }

    private func play(_ fault: Fault, on link: Connection) throws {
        if fault == .closeOnAccept { return }
        let ok = ResponseHeader(.ok).bytes
        while true {
            let header = try RequestHeader(decoding: try link.read(count: RequestHeader.size, during: "script"))
            let payload = try link.read(count: Int(header.length), during: "script")
            switch header.command {
            case .config where fault == .closeAtConfig:
                return
            case .memory:
                let pages = try RangeTable.decode(payload).reduce(0) { $0 + Int($1.length) }
                _ = try link.read(count: fault == .closeDuringMemory ? pages / 2 : pages, during: "script")
                if fault == .closeDuringMemory { return }
            case .state where fault == .closeAtState:
                return
            case .complete, .completePaused:
                let message = Array("scripted refusal".utf8)
                try link.write(ResponseHeader(.error, length: UInt64(message.count)).bytes + message, during: "script")
                return
            default:
                break
            }
            try link.write(ok, during: "script")
            if header.command == .config && fault == .stallAfterConfig {
                released.wait()
                return
            }
        }
    }
}
