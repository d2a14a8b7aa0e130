import CKVM
import Synchronization

/// Pages of guest RAM written by the VMM itself (device threads writing request results, used rings):
/// KVM's dirty log only sees writes made by vCPUs, so live migration merges this bitmap with it.
///
/// One bit per 4 KiB page, per region; set with an atomic OR from any thread, taken (read and
/// cleared) by the migration thread. Costs nothing but a flag check while no migration is tracking.
public final class DirtyBitmap: @unchecked Sendable {
    public static let pageSize: UInt64 = 4096
    private let regions: [(base: UInt64, size: UInt64, words: UnsafeMutablePointer<UInt64>, count: Int)]
    private let tracking = Atomic<Bool>(false)

    init(regions: [GuestRegion]) {
        self.regions = regions.map { r in
            let pages = Int((r.size + Self.pageSize - 1) / Self.pageSize)
            let count = (pages + 63) / 64
            let words = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
            words.initialize(repeating: 0, count: count)
            return (r.guestBase, r.size, words, count)
        }
    }

    deinit { for r in regions { r.words.deallocate() } }

    public var isTracking: Bool { tracking.load(ordering: .relaxed) }

    /// Starts recording (clearing what an earlier migration left).
    public func start() {
        for r in regions { r.words.update(repeating: 0, count: r.count) }
        tracking.store(true, ordering: .sequentiallyConsistent)
    }

    public func stop() { tracking.store(false, ordering: .sequentiallyConsistent) }

    func mark(_ address: UInt64, count: UInt64) {
        guard count > 0, tracking.load(ordering: .relaxed) else { return }
        for r in regions where address < r.base + r.size && r.base < address + count {
            let first = (max(address, r.base) - r.base) / Self.pageSize
            let last = (min(address + count, r.base + r.size) - 1 - r.base) / Self.pageSize
            for page in first...last {
                ckvm_atomic_or_u64(r.words + Int(page / 64), 1 << (page % 64))
            }
        }
    }

    /// The bitmap of region `index` (64 pages per word, bit i = page i), cleared as it is read.
    public func take(region index: Int) -> [UInt64] {
        let r = regions[index]
        return (0..<r.count).map { ckvm_atomic_xchg_u64(r.words + $0, 0) }
    }
}
