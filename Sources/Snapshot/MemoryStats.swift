/// What writing guest memory did (for logs, the benchmark, and the VMM's snapshot event).
public struct MemoryStats: Sendable, Equatable, CustomStringConvertible {
    /// Guest bytes covered by the ranges.
    public var bytesIn: UInt64 = 0
    /// Size of `memory.bin`.
    public var bytesOut: UInt64 = 0
    public var pages: UInt64 = 0
    /// Zero pages skipped (not stored). Zero pages in short gaps between data pages are stored inside the
    /// surrounding zstd frame instead (see FORMAT.md, "Writer policy") and are not counted.
    public var zeroPages: UInt64 = 0
    /// Page data as stored (compressed or raw), without record headers.
    public var storedBytes: UInt64 = 0
    public var chunks: Int = 0
    /// Runs stored uncompressed because zstd could not shrink them (or was not asked to), and their bytes.
    public var rawRuns: Int = 0
    public var rawBytes: UInt64 = 0
    public var seconds: Double = 0

    public init() {}

    /// Guest bytes per file byte.
    public var ratio: Double { bytesOut == 0 ? 0 : Double(bytesIn) / Double(bytesOut) }
    /// Guest bytes per second.
    public var throughput: Double { seconds == 0 ? 0 : Double(bytesIn) / seconds }

    public var description: String {
        "\(bytesIn) bytes → \(bytesOut) (ratio \(format(ratio))), \(zeroPages)/\(pages) zero pages, "
            + "\(chunks) chunks, \(format(seconds * 1000)) ms, \(format(throughput / 1e6)) MB/s"
    }
}

/// What restoring guest memory did.
public struct RestoreStats: Sendable, Equatable, CustomStringConvertible {
    /// Bytes read from `memory.bin`.
    public var bytesRead: UInt64 = 0
    /// Guest bytes written (non-zero pages).
    public var bytesRestored: UInt64 = 0
    /// Skipped zero pages (left alone, or zeroed with `zeroFill`).
    public var zeroPages: UInt64 = 0
    /// On-demand restore: raw runs mapped from the file instead of read, and their guest bytes (included
    /// in `bytesRestored`).
    public var mappedRuns: Int = 0
    public var mappedBytes: UInt64 = 0
    public var chunks: Int = 0
    public var seconds: Double = 0

    public init() {}

    public var description: String {
        "\(bytesRead) bytes read, \(bytesRestored) guest bytes restored"
            + (mappedRuns > 0 ? " (\(mappedBytes) mapped in \(mappedRuns) runs)" : "")
            + ", \(zeroPages) zero pages, \(chunks) chunks, \(format(seconds * 1000)) ms"
    }
}

func format(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return String(scaled)
}
