/// A run of consecutive guest pages of one kind (all zero, or all with data) inside one region.
public struct PageRun {
    public let gpa: UInt64
    public let pages: Int
    public let isZero: Bool
    /// Where the run's bytes are in this process.
    public let host: UnsafeRawPointer

    public var length: UInt64 { UInt64(pages) * Limits.pageSize }
}

/// Splits a region's pages (all of them, or those set in a dirty bitmap) into maximal runs of zero and
/// non-zero pages: zero pages travel as ranges without bytes, the others as few large writes.
public enum PageScanner {
    /// Calls `body` for each run, in address order. `dirty` is KVM's layout: bit `p % 64` of word `p / 64`
    /// for page `p` of the region; nil selects every page.
    public static func scan<E: Error>(_ region: MigrationRegion, dirty: [UInt64]?,
                                      _ body: (PageRun) throws(E) -> Void) throws(E) {
        var pending: (first: Int, count: Int, isZero: Bool)?
        func visit(_ page: Int) throws(E) {
            let zero = isZeroPage(region.host + page * Int(Limits.pageSize))
            if let run = pending, run.isZero == zero, run.first + run.count == page {
                pending!.count += 1
                return
            }
            if let run = pending { try body(make(run)) }
            pending = (page, 1, zero)
        }
        func make(_ run: (first: Int, count: Int, isZero: Bool)) -> PageRun {
            PageRun(gpa: region.guestBase + UInt64(run.first) * Limits.pageSize, pages: run.count, isZero: run.isZero,
                    host: UnsafeRawPointer(region.host + run.first * Int(Limits.pageSize)))
        }

        let pages = region.pages
        if let dirty {
            for (index, word) in dirty.enumerated() where word != 0 {
                var bits = word
                while bits != 0 {
                    let page = index * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    if page < pages { try visit(page) }
                }
            }
        } else {
            for page in 0..<pages { try visit(page) }
        }
        if let run = pending { try body(make(run)) }
    }

    /// How many pages a dirty bitmap selects.
    public static func count(_ dirty: [UInt64]) -> Int {
        dirty.reduce(0) { $0 + $1.nonzeroBitCount }
    }
}
