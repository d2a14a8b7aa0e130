import Config
import Foundation

/// The internal API: every frontend (CLI, REST, D-Bus) turns a request into one `VmmCommand`, which the
/// VMM's control loop answers with a `VmmResponse` or a `VmmError`.
public enum VmmCommand: Sendable {
    case ping
    case create(VmConfig)
    case boot
    case pause
    case resume
    case shutdown
    case reboot
    case powerButton
    case nmi
    case delete
    case info
    case counters
    case shutdownVmm
    case snapshot(VmSnapshotConfig)
    case restore(RestoreConfig)
    case coredump(VmCoredumpData)
    case sendMigration(SendMigrationData)
    case receiveMigration(ReceiveMigrationData)
    case resize(VmResize)
    case resizeZone(VmResizeZone)
    case resizeDisk(VmResizeDisk)
    case addDevice(DeviceAddition)
    case removeDevice(VmRemoveDevice)
    /// Beyond CH: the current or last live migration's progress (`GET vm.migration-progress`).
    case migrationProgress
    /// Beyond CH: stops the outgoing migration; the VM keeps running here (`PUT vm.cancel-migration`).
    case cancelMigration
}

/// A device for `vm.add-*`.
public enum DeviceAddition: Sendable {
    case disk(DiskConfig)
    case net(NetConfig)
    case fs(FsConfig)
    case pmem(PmemConfig)
    case vsock(VsockConfig)
    case vdpa(VdpaConfig)
    case device(DeviceConfig)
    case userDevice(UserDeviceConfig)
}

public enum VmmResponse: Sendable {
    case none
    case ping(VmmPingResponse)
    case info(VmInfo)
    case counters(VmCounters)
    /// A hot-plugged device (200 with a body) or, before boot, an addition to the config (204: nil).
    case deviceAdded(PciDeviceInfo?)
    case migrationProgress(MigrationProgress)
}

/// Why the VMM refused or failed a command.
///
/// `chain` reads from the failed operation down to its root cause, as Cloud Hypervisor's error bodies
/// (the REST layer puts "Error from API" in front). `kind` decides the HTTP status.
public struct VmmError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// 400: the request itself is wrong (invalid configuration values).
        case badRequest
        /// 404: no VM, or no such device.
        case notFound
        /// 409: a duplicate id or path.
        case conflict
        /// 500: the VM is in the wrong state, or the operation failed.
        case internalError
        /// 429: an earlier request is still being carried out (e.g. a vCPU removal).
        case tooManyRequests
    }

    public let kind: Kind
    public let chain: [String]

    public init(_ kind: Kind, _ chain: [String]) {
        self.kind = kind
        self.chain = chain
    }

    public var description: String { chain.joined(separator: ": ") }

    public static func vmNotCreated(_ operation: String) -> VmmError {
        VmmError(.notFound, [operation, "VM is not created"])
    }

    public static func invalidTransition(_ operation: String, from: VmState, to: VmState) -> VmmError {
        VmmError(.internalError, [operation, "Invalid transition: VM is \(from.rawValue), cannot become \(to.rawValue)"])
    }

    public static func notSupported(_ operation: String, _ what: String) -> VmmError {
        VmmError(.internalError, [operation, "\(what) is not supported by this VMM yet"])
    }
}

/// Anything that answers VMM commands without blocking the caller's thread (the REST and D-Bus frontends
/// take this, so they can be tested against a stand-in).
public protocol VmmCommandHandling: Sendable {
    func request(_ command: VmmCommand) async -> Result<VmmResponse, VmmError>
}
