import Foundation
import XCTest
import Glibc
@testable import Migration

/// A destination that follows the protocol up to a chosen point and then fails the way a dying or
/// confused VMM would: the source must survive each of these.
final class ScriptedDestination: @unchecked Sendable {
    enum Fault: CaseIterable {
        case closeOnAccept, closeAtConfig, closeDuringMemory, closeAtState, refuseComplete
        /// Local migration: takes the memory fds (maps them, as a destination would), then dies.
        case closeAfterMemoryFd
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
            if header.command == .memoryFd {
                try takeMemoryFds(header, on: link)
                if fault == .closeAfterMemoryFd { return }
                try link.write(ok, during: "script")
                continue
            }
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

    /// Receives the fds and maps every region, as a real destination does, then lets go of them all.
    private func takeMemoryFds(_ header: RequestHeader, on link: Connection) throws {
        let (payload, fds) = try link.read(count: Int(header.length), receivingUpTo: Limits.maxMemoryFds, during: "script")
        defer { fds.forEach { close($0) } }
        for (fd, region) in zip(fds, try MemoryFdTable.decode(payload)) {
            let host = mmap(nil, Int(region.length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            precondition(host != MAP_FAILED)
            munmap(host, Int(region.length))
        }
    }
}

extension LivePeers {
    /// Sends `source`'s guest to a scripted destination once per fault (`options`: more vm.send-migration
    /// JSON members); each time the source reports the expected reason and its guest keeps running intact.
    func assertSourceSurvives(_ source: Peer, faults: [(ScriptedDestination.Fault, String)], options: String = "",
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let before = source.failures.count
        for (round, (fault, reason)) in faults.enumerated() {
            let path = dir.file("scripted\(round)")
            let destination = try ScriptedDestination(path: path, fault: fault)
            let sent = try source.api.put("vm.send-migration", #"{"destination_url":"unix:\#(path)"\#(options)}"#)
            XCTAssertEqual(sent.status, 204, sent.body, file: file, line: line)
            let error = try source.waitForFailure(count: before + round + 1)
            XCTAssertTrue(error.contains(reason), "\(fault): \(error)", file: file, line: line)
            XCTAssertTrue(destination.wait(), file: file, line: line)
            try source.assertStillRunning(file: file, line: line)
        }
    }
}
