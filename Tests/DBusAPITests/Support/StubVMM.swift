import Config
import Foundation
import VMM

/// A stand-in for the VMM: records the commands it receives (as their REST endpoint names) and answers
/// with `answer`. `hold(_:)` keeps one command unanswered until `release()`, like a long migration.
final class StubVMM: VmmCommandHandling, @unchecked Sendable {
    private let lock = NSLock()
    private var received: [String] = []
    private var held: String?
    private var waiting: CheckedContinuation<Void, Never>?
    private var released = false
    private let answer: @Sendable (VmmCommand) -> Result<VmmResponse, VmmError>

    init(answer: @escaping @Sendable (VmmCommand) -> Result<VmmResponse, VmmError> = { _ in .success(.none) }) {
        self.answer = answer
    }

    var commands: [String] { lock.withLock { received } }

    /// Commands for `endpoint` wait for `release()`.
    func hold(_ endpoint: String) { lock.withLock { held = endpoint; released = false } }

    func release() {
        let continuation = lock.withLock { released = true; defer { waiting = nil }; return waiting }
        continuation?.resume()
    }

    func request(_ command: VmmCommand) async -> Result<VmmResponse, VmmError> {
        let endpoint = Self.endpoint(command)
        let mustWait = lock.withLock { received.append(endpoint); return endpoint == held && !released }
        if mustWait {
            await withCheckedContinuation { continuation in
                let resumeNow = lock.withLock {
                    if released { return true }
                    waiting = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        return answer(command)
    }

    /// The REST endpoint a command comes from, so tests can name what each method must send.
    static func endpoint(_ command: VmmCommand) -> String {
        switch command {
        case .ping: "vmm.ping"
        case .shutdownVmm: "vmm.shutdown"
        case .create: "vm.create"
        case .boot: "vm.boot"
        case .pause: "vm.pause"
        case .resume: "vm.resume"
        case .shutdown: "vm.shutdown"
        case .reboot: "vm.reboot"
        case .powerButton: "vm.power-button"
        case .nmi: "vm.nmi"
        case .delete: "vm.delete"
        case .info: "vm.info"
        case .counters: "vm.counters"
        case .snapshot: "vm.snapshot"
        case .restore: "vm.restore"
        case .coredump: "vm.coredump"
        case .sendMigration: "vm.send-migration"
        case .receiveMigration: "vm.receive-migration"
        case .resize: "vm.resize"
        case .resizeZone: "vm.resize-zone"
        case .resizeDisk: "vm.resize-disk"
        case .removeDevice: "vm.remove-device"
        case .migrationProgress: "vm.migration-progress"
        case .cancelMigration: "vm.cancel-migration"
        case let .addDevice(device):
            switch device {
            case .disk: "vm.add-disk"
            case .net: "vm.add-net"
            case .fs: "vm.add-fs"
            case .pmem: "vm.add-pmem"
            case .vsock: "vm.add-vsock"
            case .vdpa: "vm.add-vdpa"
            case .device: "vm.add-device"
            case .userDevice: "vm.add-user-device"
            }
        }
    }
}
