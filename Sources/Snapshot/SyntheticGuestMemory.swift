#if canImport(Glibc)
import Glibc
#endif

/// Deterministic memory contents that resemble a running guest, for the benchmark and the tests.
///
/// Real guest RAM is a mix: free (zero) pages, page cache text, kernel structures full of similar
/// pointers, machine code, sparse pages, and incompressible data (compressed files, crypto). Measuring
/// only random or only zero memory would say nothing about snapshot time or size.
public enum SyntheticGuestMemory {
    public enum Profile: String, Sendable, CaseIterable {
        /// The mix above: about a third zero (mostly whole free 2 MiB blocks, some single pages), and
        /// per page one of the kinds above.
        case guestLike = "guest-like"
        /// A pseudo-random stream per page: incompressible, like the checkguest's memcheck pattern.
        case random
        /// All zero (a freshly booted, idle guest).
        case zero
    }

    /// Fills `buffer` according to `profile`; the same seed gives the same bytes.
    @_optimize(speed)
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer, profile: Profile, seed: UInt64 = 1) {
        guard let base = buffer.baseAddress else { return }
        let pools = Pools(seed: seed)
        let pageSize = 4096
        var page = 0
        while page * pageSize < buffer.count {
            let dst = base + page * pageSize
            let count = min(pageSize, buffer.count - page * pageSize)
            var rng = SplitMix(SplitMix.mix(SplitMix.mix(seed) ^ UInt64(page)))
            switch profile {
            case .zero: memset(dst, 0, count)
            case .random: fillRandom(dst, count, &rng)
            case .guestLike:
                // Free memory comes in large blocks (never-touched RAM, buddy-allocator blocks).
                if SplitMix.mix(seed ^ UInt64(page / 512) ^ 0xF4EE) % 100 < 28 {
                    memset(dst, 0, count)
                } else {
                    fillGuestLike(dst, count, &rng, pools)
                }
            }
            page += 1
        }
    }

    @_optimize(speed)
    private static func fillGuestLike(_ dst: UnsafeMutableRawPointer, _ count: Int, _ rng: inout SplitMix, _ pools: Pools) {
        let kind = rng.next() % 100
        switch kind {
        case 0..<10: memset(dst, 0, count)
        case 10..<35: copyFromPool(pools.text, dst, count, &rng)
        case 35..<60: fillStructures(dst, count, &rng)
        case 60..<75: copyFromPool(pools.code, dst, count, &rng)
        case 75..<85:
            memset(dst, 0, count)
            for _ in 0..<(rng.next() % 24) {
                let word = Int(rng.next() % UInt64(count / 8))
                dst.storeBytes(of: rng.next() & 0xFFFF_FFFF, toByteOffset: word * 8, as: UInt64.self)
            }
        case 85..<95: fillRandom(dst, count, &rng)
        default: memset(dst, Int32(truncatingIfNeeded: rng.next() & 0xFF), count)
        }
    }

    /// Kernel-like 64-byte objects: a few pointers into one region, small counters, flags, padding.
    @_optimize(speed)
    private static func fillStructures(_ dst: UnsafeMutableRawPointer, _ count: Int, _ rng: inout SplitMix) {
        let region: UInt64 = 0xFFFF_8880_0000_0000 | (rng.next() & 0x3_FF00_0000)
        var offset = 0
        while offset + 64 <= count {
            let r = rng.next()
            dst.storeBytes(of: region | (r & 0xFF_FFC0), toByteOffset: offset, as: UInt64.self)
            dst.storeBytes(of: region | ((r >> 24) & 0xFF_FFC0), toByteOffset: offset + 8, as: UInt64.self)
            dst.storeBytes(of: (r >> 48) & 0xFF, toByteOffset: offset + 16, as: UInt64.self)
            dst.storeBytes(of: UInt64(1), toByteOffset: offset + 24, as: UInt64.self)
            dst.storeBytes(of: (r >> 56) & 0x3, toByteOffset: offset + 32, as: UInt64.self)
            dst.storeBytes(of: UInt64(0), toByteOffset: offset + 40, as: UInt64.self)
            dst.storeBytes(of: 0xFFFF_FFFF_8100_0000 | (r & 0xF_FFF0), toByteOffset: offset + 48, as: UInt64.self)
            dst.storeBytes(of: UInt64(0), toByteOffset: offset + 56, as: UInt64.self)
            offset += 64
        }
        if offset < count { memset(dst + offset, 0, count - offset) }
    }

    @_optimize(speed)
    private static func fillRandom(_ dst: UnsafeMutableRawPointer, _ count: Int, _ rng: inout SplitMix) {
        var offset = 0
        while offset + 8 <= count {
            dst.storeBytes(of: rng.next(), toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < count {
            dst.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
    }

    private static func copyFromPool(_ pool: UnsafeMutableRawBufferPointer, _ dst: UnsafeMutableRawPointer,
                                     _ count: Int, _ rng: inout SplitMix) {
        let start = Int(rng.next() % UInt64(pool.count - 4096))
        dst.copyMemory(from: pool.baseAddress! + start, byteCount: count)
    }

    /// 64 KiB of word-like text and of instruction-like bytes, sampled by the text and code pages.
    private final class Pools {
        let text = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 64)
        let code = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 64)

        init(seed: UInt64) {
            var rng = SplitMix(SplitMix.mix(seed ^ 0x7E57))
            let words = ["the", "kernel", "memory", "page", "snapshot", "guest", "device", "virtio", "queue",
                         "interrupt", "return", "static", "struct", "int", "void", "if", "else", "for", "while",
                         "error", "value", "count", "state", "restore", "config", "and", "of", "to", "in", "is"]
            var i = 0
            while i < text.count {
                let word = words[Int(rng.next() % UInt64(words.count))].utf8
                for byte in word where i < text.count { text[i] = byte; i += 1 }
                if i < text.count { text[i] = rng.next() % 9 == 0 ? 10 : 32; i += 1 }
            }
            let opcodes: [[UInt8]] = [[0x48, 0x89, 0xE5], [0x55], [0x5D], [0xC3], [0x48, 0x8B, 0x45], [0xE8],
                                      [0x0F, 0x1F, 0x44, 0x00, 0x00], [0x48, 0x83, 0xEC], [0x31, 0xC0], [0x74],
                                      [0x75], [0x48, 0x8D, 0x3D], [0x41, 0x54], [0x89, 0xC7], [0xFF, 0x15]]
            i = 0
            while i < code.count {
                for byte in opcodes[Int(rng.next() % UInt64(opcodes.count))] where i < code.count { code[i] = byte; i += 1 }
                let immediate = rng.next()
                for k in 0..<Int(immediate % 3) where i < code.count { code[i] = UInt8(truncatingIfNeeded: immediate >> (8 * k + 8)); i += 1 }
            }
        }

        deinit {
            text.deallocate()
            code.deallocate()
        }
    }
}

/// SplitMix64: a tiny, fast, seedable generator. Seeds are scrambled with `mix` first: nearby seeds
/// would otherwise give shifted copies of one stream, which zstd compresses away.
struct SplitMix {
    private var state: UInt64
    init(_ seed: UInt64) { state = seed }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
