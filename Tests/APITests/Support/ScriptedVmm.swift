import Config
import Foundation
import Synchronization
import VMM

/// A stand-in for the VMM: records every command and answers from a script. Like the real control loop,
/// it answers from a thread of its own (never from Swift's cooperative pool), after an optional delay.
final class ScriptedVmm: VmmCommandHandling {
    typealias Answer = @Sendable (VmmCommand) -> Result<VmmResponse, VmmError>

    static let pong = VmmPingResponse(build_version: "v0.1.0", version: "v0.1.0", pid: 42, features: [])

    private struct State {
        var commands: [VmmCommand] = []
        var answer: Answer = ScriptedVmm.defaultAnswer
        var delay: @Sendable (VmmCommand) -> TimeInterval = { _ in 0 }
    }

    private let state = Mutex(State())

    /// Every command in the order it arrived.
    var commands: [VmmCommand] { state.withLock { $0.commands } }

    /// Replaces how commands are answered.
    func answer(_ answer: @escaping Answer) { state.withLock { $0.answer = answer } }

    /// Makes some commands slow (seconds, slept on the answering thread).
    func delay(_ delay: @escaping @Sendable (VmmCommand) -> TimeInterval) { state.withLock { $0.delay = delay } }

    func request(_ command: VmmCommand) async -> Result<VmmResponse, VmmError> {
        let (answer, delay) = state.withLock { state in
            state.commands.append(command)
            return (state.answer, state.delay(command))
        }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                continuation.resume(returning: answer(command))
            }
        }
    }

    /// Waits (polling) until `count` commands have arrived.
    func waitForCommands(_ count: Int, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if commands.count >= count { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    /// What a healthy VMM says: data for the GET endpoints, nothing for the rest.
    static let defaultAnswer: Answer = { command in
        switch command {
        case .ping: .success(.ping(pong))
        case .info: .success(.info(VmInfo(config: VmConfig(), state: .Created, memory_actual_size: 512 << 20,
                                          device_tree: [:])))
        case .counters: .success(.counters(["_disk0": ["read_bytes": 4096, "write_ops": 2]]))
        default: .success(.none)
        }
    }
}
