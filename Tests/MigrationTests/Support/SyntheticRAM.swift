import Glibc
import Migration

/// Page-aligned host memory standing in for guest RAM in tests without KVM (released on deinit).
final class SyntheticRAM {
    let regions: [MigrationRegion]

    /// Regions at the given guest bases, zero-filled.
    init(_ layout: [(base: UInt64, pages: Int)]) {
        regions = layout.map { base, pages in
            let size = pages * 4096
            let host = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            return MigrationRegion(guestBase: base, size: UInt64(size), host: host)
        }
    }

    deinit {
        for region in regions { munmap(region.host, Int(region.size)) }
    }

    /// Fills page `page` of region `region` with a pattern derived from `seed` (never all zero).
    func fill(region: Int, page: Int, seed: UInt64) {
        let words = (regions[region].host + page * 4096).assumingMemoryBound(to: UInt64.self)
        for i in 0..<512 { words[i] = (seed &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(i) | 1 }
    }

    /// Fills a page with low-entropy data (16 distinct words cycling; never all zero) that zstd shrinks
    /// many times over.
    func fillCompressible(region: Int, page: Int, seed: UInt64) {
        let words = (regions[region].host + page * 4096).assumingMemoryBound(to: UInt64.self)
        for i in 0..<512 { words[i] = seed &+ UInt64(i % 16) | 1 }
    }

    /// Fills `count` pages with a xorshift64 stream (the checkguest's kind of data), which zstd cannot shrink.
    func fillRandom(region: Int, page: Int, count: Int = 1) {
        let words = (regions[region].host + page * 4096).assumingMemoryBound(to: UInt64.self)
        var state = UInt64(page + 1) &* 0x9E37_79B9_7F4A_7C15
        for i in 0..<count * 512 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[i] = state
        }
    }

    func zero(region: Int, page: Int) {
        memset(regions[region].host + page * 4096, 0, 4096)
    }

    func bytes(region: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: regions[region].host, count: Int(regions[region].size)))
    }
}
