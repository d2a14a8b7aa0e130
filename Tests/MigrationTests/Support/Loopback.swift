import Foundation
import Glibc
import Migration

/// A connected pair of in-process connections (a UNIX socketpair), for protocol tests without KVM.
func connectionPair(timeoutSeconds: Int = 5) -> (source: Connection, destination: Connection) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    return (Connection(fd: fds[0], timeoutSeconds: timeoutSeconds), Connection(fd: fds[1], timeoutSeconds: timeoutSeconds))
}

/// A destination sink that records what arrives into synthetic RAM.
final class RecordingSink: MigrationSink, @unchecked Sendable {
    let ram: SyntheticRAM
    var config: Data?
    var sections: [StateSection] = []
    var completed = false
    var refuseComplete: String?
    var refuseState: String?
    /// Local migration: the ranges and memory fds received (closed with the sink).
    var adopted: (regions: [PageRange], fds: [Int32])?

    init(ram: SyntheticRAM) { self.ram = ram }

    deinit { adopted?.fds.forEach { close($0) } }

    func configure(_ config: Data, local: Bool) throws -> [MigrationRegion] {
        self.config = config
        return local ? [] : ram.regions
    }

    func adoptMemory(_ regions: [PageRange], fds: [Int32]) throws {
        adopted = (regions, fds)
    }

    func receivedState(_ sections: [StateSection]) throws {
        if let refuseState { throw StringError(refuseState) }
        self.sections = sections
    }

    func complete() throws {
        if let refuseComplete { throw StringError(refuseComplete) }
        completed = true
    }
}

struct StringError: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}

/// Runs a MigrationServer on its own thread; `result()` waits for its outcome.
final class ServerThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<Bool, MigrationError>?

    init(_ server: MigrationServer) {
        nonisolated(unsafe) let server = server
        Thread { [self] in
            do throws(MigrationError) {
                outcome = .success(try server.run())
            } catch {
                outcome = .failure(error)
            }
            done.signal()
        }.start()
    }

    func result(timeout: TimeInterval = 10) -> Result<Bool, MigrationError>? {
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return outcome
    }
}
