/// Holds a FLUSH back until every write (or discard, write-zeroes) popped before it has completed, so
/// the fdatasync covers them; writes popped later do not delay it.
struct FlushGate<Flush> {
    private var nextTicket: UInt64 = 0
    private var writesInFlight: Set<UInt64> = []
    /// Flushes in arrival order, each with the first ticket it does not wait for.
    private var waiting: [(after: UInt64, flush: Flush)] = []

    /// A write starts; its ticket goes to `writeFinished` once it completed.
    mutating func writeStarted() -> UInt64 {
        defer { nextTicket += 1 }
        writesInFlight.insert(nextTicket)
        return nextTicket
    }

    /// Returns the flushes this completion released, in arrival order.
    mutating func writeFinished(_ ticket: UInt64) -> [Flush] {
        writesInFlight.remove(ticket)
        let oldest = writesInFlight.min() ?? nextTicket
        let released = waiting.prefix { $0.after <= oldest }
        waiting.removeFirst(released.count)
        return released.map(\.flush)
    }

    /// Returns the flush when it may start now; otherwise keeps it for `writeFinished` to release.
    mutating func admit(_ flush: Flush) -> Flush? {
        guard !writesInFlight.isEmpty else { return flush }
        waiting.append((nextTicket, flush))
        return nil
    }
}
