/// When to slow the guest down so that pre-copy can converge (QEMU's auto-converge rule): a pass during
/// which the guest dirtied more than half as many bytes as the link carried makes no real headway. After
/// two such passes in a row the vCPUs are throttled to 20 %, and every further such pass adds 10 %, up to
/// 99 %. The throttle never goes down during a migration: a guest let loose again would undo the headway.
public struct AutoConverge: Sendable, Equatable {
    public static let initialPercent = 20
    public static let stepPercent = 10
    public static let maxPercent = 99
    /// Dirtied bytes above this share of the bytes sent in the same pass count as no headway.
    public static let dirtyShareThreshold = 0.5
    /// Passes without headway in a row before the throttle starts.
    public static let passesBeforeThrottle = 2

    /// The throttle to apply now (0: none).
    public private(set) var percent = 0
    private var slowPasses = 0

    public init() {}

    /// Records one pass: `dirtiedBytes` were dirtied while `sentBytes` were sent. Returns the new throttle
    /// percentage when it changed.
    public mutating func record(dirtiedBytes: UInt64, sentBytes: UInt64) -> Int? {
        guard Double(dirtiedBytes) > Double(sentBytes) * Self.dirtyShareThreshold else {
            slowPasses = 0
            return nil
        }
        slowPasses += 1
        let next = percent == 0
            ? (slowPasses >= Self.passesBeforeThrottle ? Self.initialPercent : 0)
            : min(percent + Self.stepPercent, Self.maxPercent)
        guard next != percent else { return nil }
        percent = next
        return next
    }
}
