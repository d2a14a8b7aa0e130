#if canImport(Glibc)
import Glibc
#endif

/// A point on the host's wall clock (UTC), as `clock_gettime(CLOCK_REALTIME)` gives it.
public struct WallTime: Sendable, Equatable {
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }
}

/// The host time sources the clock devices read, injectable so that tests can pin them.
public struct HostClock: Sendable {
    /// Nanoseconds on a clock that never goes backwards (CLOCK_MONOTONIC).
    public var monotonicNanoseconds: @Sendable () -> UInt64
    /// Wall-clock time in UTC (CLOCK_REALTIME).
    public var realtime: @Sendable () -> WallTime

    public init(monotonicNanoseconds: @escaping @Sendable () -> UInt64,
                realtime: @escaping @Sendable () -> WallTime) {
        self.monotonicNanoseconds = monotonicNanoseconds
        self.realtime = realtime
    }

    public static let system = HostClock(
        monotonicNanoseconds: {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        },
        realtime: {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return WallTime(seconds: Int64(ts.tv_sec), nanoseconds: Int64(ts.tv_nsec))
        }
    )
}
