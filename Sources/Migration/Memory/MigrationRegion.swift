import Glibc

/// One range of guest RAM and where it is mapped in this process: what the source reads pages from
/// and the destination writes them into.
public struct MigrationRegion: @unchecked Sendable {
    public let guestBase: UInt64
    public let size: UInt64
    public let host: UnsafeMutableRawPointer

    public init(guestBase: UInt64, size: UInt64, host: UnsafeMutableRawPointer) {
        self.guestBase = guestBase
        self.size = size
        self.host = host
    }

    public var pages: Int { Int(size / Limits.pageSize) }
}

extension Array where Element == MigrationRegion {
    /// The host bytes behind `range`, or nil when it is not inside one region (a peer's bad range).
    func hostBytes(for range: PageRange) -> UnsafeMutableRawBufferPointer? {
        for region in self where range.gpa >= region.guestBase && range.length <= region.size
            && range.gpa - region.guestBase <= region.size - range.length {
            return UnsafeMutableRawBufferPointer(start: region.host + Int(range.gpa - region.guestBase), count: Int(range.length))
        }
        return nil
    }
}

/// Whether a 4 KiB page is all zero: its first word is zero and the page equals itself shifted by one
/// word (so every word equals the first) — glibc's vectorised memcmp, without a zero page to compare to.
func isZeroPage(_ page: UnsafeRawPointer) -> Bool {
    page.loadUnaligned(as: UInt64.self) == 0 && memcmp(page, page + 8, Int(Limits.pageSize) - 8) == 0
}
