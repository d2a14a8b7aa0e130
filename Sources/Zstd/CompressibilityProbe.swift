/// Decides cheaply whether a run is worth giving to zstd: on incompressible memory (encrypted or compressed
/// data, the checkguest's memcheck pattern) zstd needs about as long to fail as to compress — ≈ 0.18 CPU
/// seconds per 512 MiB at level 1 here, a third of a snapshot's CPU — only to have the run stored raw.
///
/// It compresses a few 4 KiB samples spread over the run (≈ 1 % of it) with the same context and level; if
/// not one of them shrinks by at least 1/16, the whole run is stored raw. A run whose samples all miss its
/// compressible parts is stored raw too (larger, never wrong); short runs are simply compressed.
public final class CompressibilityProbe {
    public static let sampleSize = 4096
    static let samples = 8
    /// Runs shorter than this are compressed without probing (the probe would cost as much).
    static let minimumRun = 16 * sampleSize

    private let output: UnsafeMutableRawPointer

    public init() { output = .allocate(byteCount: Self.sampleSize, alignment: 64) }

    deinit { output.deallocate() }

    public func worthCompressing(_ source: UnsafeRawPointer, count: Int, with compressor: ZstdCompressor, level: Int32) -> Bool {
        worthCompressing([UnsafeRawBufferPointer(start: source, count: count)], with: compressor, level: level)
    }

    /// The same for scattered runs taken as one (a migration batch): the samples are spread over their
    /// concatenation. Every run but the last is a whole number of samples long.
    public func worthCompressing(_ sources: [UnsafeRawBufferPointer], with compressor: ZstdCompressor, level: Int32) -> Bool {
        let count = sources.reduce(0) { $0 + $1.count }
        guard count >= Self.minimumRun else { return true }
        let stride = (count - Self.sampleSize) / (Self.samples - 1) / Self.sampleSize * Self.sampleSize
        var run = 0, runStart = 0
        for sample in 0..<Self.samples {
            let offset = sample * stride
            while offset >= runStart + sources[run].count {
                runStart += sources[run].count
                run += 1
            }
            let capacity = Self.sampleSize - Self.sampleSize / 16
            if compressor.compress(sources[run].baseAddress! + (offset - runStart), count: Self.sampleSize, into: output,
                                   capacity: capacity, level: level) != nil {
                return true
            }
        }
        return false
    }
}
