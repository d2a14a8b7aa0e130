/// When pre-copy stops iterating. CH's rule: the estimated downtime — the bytes still dirty over the
/// measured bandwidth — is within `downtime_ms`. If that never happens within the iteration or time
/// budget, the migration is out of budget and `timeout_strategy` decides (Cancel or go ahead anyway).
///
/// Beyond CH (and QEMU), the target is a ceiling, not the aim: once within it, another pass is sent as long
/// as the previous one at least halved what is left and what is left is still worth more than
/// `shortestPassMs` of link time. A pass of P bytes lets the guest dirty only what it writes in P/bandwidth,
/// so the rest shrinks geometrically while the guest writes slower than the link, and the pause carries
/// the last crumbs instead of up to `downtime_ms` worth of pages.
public struct Convergence: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        /// Send another pass of dirty pages.
        case iterate
        /// Pause the VM now: the rest fits in the downtime target.
        case converged
        /// Out of iterations or time; the reason says which.
        case exhausted(String)
    }

    public let downtimeLimitMs: UInt64
    public let maxIterations: Int
    public let timeoutSeconds: UInt64
    /// Below this estimate another pass is not worth its fixed costs (dirty-log read, round trips).
    public static let shortestPassMs = 1.0

    public init(downtimeLimitMs: UInt64, maxIterations: Int, timeoutSeconds: UInt64) {
        self.downtimeLimitMs = downtimeLimitMs
        self.maxIterations = maxIterations
        self.timeoutSeconds = timeoutSeconds
    }

    /// Milliseconds to send `pendingBytes` at `bytesPerSecond` (infinite when nothing was measured yet).
    public static func estimatedDowntimeMs(pendingBytes: UInt64, bytesPerSecond: Double) -> Double {
        guard pendingBytes > 0 else { return 0 }
        guard bytesPerSecond > 0 else { return .infinity }
        return Double(pendingBytes) / bytesPerSecond * 1000
    }

    /// `iteration` counts the dirty passes sent so far; `elapsedSeconds` runs from the migration's start;
    /// `previousBytes`: what the previous pass had to send (nil: no previous pass to compare with).
    public func decide(pendingBytes: UInt64, bytesPerSecond: Double, iteration: Int, elapsedSeconds: Double,
                       previousBytes: UInt64? = nil) -> Decision {
        let estimate = Self.estimatedDowntimeMs(pendingBytes: pendingBytes, bytesPerSecond: bytesPerSecond)
        let inBudget = iteration < maxIterations && elapsedSeconds < Double(timeoutSeconds)
        if estimate <= Double(downtimeLimitMs) {
            let shrinking = previousBytes.map { pendingBytes <= $0 / 2 } ?? false
            return inBudget && shrinking && estimate > Self.shortestPassMs ? .iterate : .converged
        }
        let why = "estimated downtime \(Int(min(estimate, 1e12))) ms is still above downtime_ms=\(downtimeLimitMs)"
        if iteration >= maxIterations { return .exhausted("\(why) after \(iteration) memory iterations") }
        if elapsedSeconds >= Double(timeoutSeconds) { return .exhausted("\(why) when timeout_s=\(timeoutSeconds) expired") }
        return .iterate
    }
}

/// Bandwidth as the source sees it: page bytes sent over the wall time of the passes that sent them
/// (scanning, writing and waiting for acknowledgements included: the final phase pays all of it too).
public struct BandwidthMeter: Sendable, Equatable {
    public private(set) var bytes: UInt64 = 0
    public private(set) var seconds: Double = 0

    public init() {}

    public mutating func record(bytes: UInt64, seconds: Double) {
        self.bytes += bytes
        self.seconds += seconds
    }

    public var bytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds : 0 }
}
