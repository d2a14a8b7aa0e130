import Foundation
import Synchronization

/// What a live migration is doing, for a progress endpoint (beyond CH): the current or last migration
/// of this VMM, as the source or the destination. JSON field names follow the API's snake_case.
public struct MigrationProgress: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable { case source, destination }

    public enum Phase: String, Codable, Sendable {
        /// Source: connecting and sending Start/Config. Destination: waiting for the source.
        case connecting
        /// Source: the first pass over all RAM. Destination: receiving memory.
        case memory
        /// Source: sending pages dirtied during the previous pass.
        case iterating
        /// Source: VM paused, last pages and state in flight. Destination: building the VM.
        case completing
        case completed
        case failed
    }

    public var role: Role
    public var phase: Phase
    public var url: String
    /// Dirty passes after the first full pass.
    public var iteration: Int = 0
    /// Guest RAM size.
    public var memory_bytes: UInt64 = 0
    /// Source: bytes written to the connection; destination: bytes read from it.
    public var transferred_bytes: UInt64 = 0
    /// Pages sent with their bytes / as zero markers (source) over all passes.
    public var data_pages: Int = 0
    public var zero_pages: Int = 0
    /// Pages found dirty at the start of the last pass, and the rate they were dirtied at.
    public var dirty_pages: Int = 0
    public var dirty_rate_bytes_per_s: Double = 0
    public var bandwidth_bytes_per_s: Double = 0
    public var estimated_downtime_ms: Double = 0
    /// Source: the share of time auto-converge holds the vCPUs (0: not throttled).
    public var throttle_percent: Int = 0
    /// The downtime target, and the real one once the VM has moved (pause → destination's Ok).
    public var downtime_limit_ms: UInt64 = 0
    public var downtime_ms: Double?
    public var elapsed_ms: Double = 0
    public var error: String?

    public init(role: Role, phase: Phase, url: String) {
        self.role = role
        self.phase = phase
        self.url = url
    }
}

/// The progress record shared between a migration worker (writer) and any frontend thread (reader).
final class MigrationProgressStore: Sendable {
    private let current = Mutex<MigrationProgress?>(nil)

    var value: MigrationProgress? { current.withLock { $0 } }

    func set(_ progress: MigrationProgress) { current.withLock { $0 = progress } }
}

extension Vmm {
    /// The current or last live migration of this VMM (nil if there was none); safe from any thread.
    public var migrationProgress: MigrationProgress? { migrationProgressStore.value }
}
