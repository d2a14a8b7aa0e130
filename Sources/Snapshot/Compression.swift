import CZstd

/// How memory pages are stored.
public enum MemoryCompression: Sendable, Equatable, CustomStringConvertible {
    /// Non-zero pages stored as they are (fastest to write when disk bandwidth is not the limit).
    case none
    /// zstd at `level` (1 is the default: ≈ 1.5 GB/s per core on guest-like memory; negative levels are
    /// faster still, higher levels smaller and slower).
    case zstd(level: Int32)

    public static let `default` = MemoryCompression.zstd(level: 1)

    public var description: String {
        switch self {
        case .none: return "none"
        case let .zstd(level): return "zstd level \(level)"
        }
    }

    func validate() throws {
        if case let .zstd(level) = self, level < ZSTD_minCLevel() || level > ZSTD_maxCLevel() {
            throw SnapshotError.invalidArgument(
                "zstd level \(level) is outside \(ZSTD_minCLevel())…\(ZSTD_maxCLevel())")
        }
    }
}

/// A zstd compression context owned by one thread (contexts are reused across chunks: allocating one per
/// chunk would cost more than compressing a mostly-zero chunk).
final class ZstdCompressor {
    private let context: OpaquePointer

    init() throws {
        guard let context = ZSTD_createCCtx() else {
            throw SnapshotError.invalidArgument("zstd: cannot allocate a compression context")
        }
        self.context = context
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `source` into at most `capacity` bytes; nil if it does not fit (the caller stores raw).
    func compress(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableRawPointer,
                  capacity: Int, level: Int32) -> Int? {
        guard capacity > 0 else { return nil }
        let n = ZSTD_compressCCtx(context, destination, capacity, source, count, level)
        return ZSTD_isError(n) != 0 ? nil : n
    }
}

/// A zstd decompression context owned by one restore thread.
final class ZstdDecompressor {
    private let context: OpaquePointer

    init() throws {
        guard let context = ZSTD_createDCtx() else {
            throw SnapshotError.invalidArgument("zstd: cannot allocate a decompression context")
        }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses one frame straight into `destination`, which must receive exactly `count` bytes.
    /// Returns nil on success, or what zstd says is wrong.
    func decompress(_ source: UnsafeRawPointer, count sourceCount: Int, into destination: UnsafeMutableRawPointer,
                    count: Int) -> String? {
        let n = ZSTD_decompressDCtx(context, destination, count, source, sourceCount)
        if ZSTD_isError(n) != 0 { return "zstd: " + String(cString: ZSTD_getErrorName(n)) }
        if n != count { return "zstd frame holds \(n) bytes, expected \(count)" }
        return nil
    }
}
