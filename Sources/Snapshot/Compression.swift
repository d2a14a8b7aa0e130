import Zstd

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
        if case let .zstd(level) = self, !Zstd.levels.contains(level) {
            throw SnapshotError.invalidArgument(
                "zstd level \(level) is outside \(Zstd.levels.lowerBound)…\(Zstd.levels.upperBound)")
        }
    }
}
