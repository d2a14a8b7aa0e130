/// Hands out file offsets to records produced in parallel, in item order, so that the threads that encode
/// the records also write them — at their own offsets, at the same time — instead of queueing them for one
/// writer thread: on two cores, the copy into the page cache is as much work as everything else.
///
/// A thread waits only until the previous item's length is known, not until it is written.
final class AppendSequencer: @unchecked Sendable {
    private let monitor = Monitor()
    private var next = 0
    private var end: UInt64
    private var abandoned = false
    /// The offset each item got.
    private(set) var offsets: [UInt64]

    init(count: Int, startingAt offset: UInt64) {
        end = offset
        offsets = [UInt64](repeating: 0, count: count)
    }

    /// Waits for `item`'s turn and reserves `length(offset)` bytes at the current end (the length may
    /// depend on the offset: alignment). Nil once the sequence was abandoned.
    func reserve(_ item: Int, length: (UInt64) -> Int) -> UInt64? {
        monitor.locked {
            while next != item && !abandoned { monitor.wait() }
            guard !abandoned else { return nil }
            let offset = end
            end += UInt64(length(offset))
            offsets[item] = offset
            next += 1
            monitor.broadcast()
            return offset
        }
    }

    /// An item failed before reserving: threads waiting for their turn give up.
    func abandon() {
        monitor.locked {
            abandoned = true
            monitor.broadcast()
        }
    }

    /// Where the last reserved record ends.
    var endOffset: UInt64 { monitor.locked { end } }
}
