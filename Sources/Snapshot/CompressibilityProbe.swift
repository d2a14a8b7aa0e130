/// Decides cheaply whether a run is worth giving to zstd: on incompressible memory (encrypted or compressed
/// data, the checkguest's memcheck pattern) zstd needs about as long to fail as to compress — ≈ 0.18 CPU
/// seconds per 512 MiB at level 1 here, a third of a snapshot's CPU — only to have the run stored raw.
///
/// It compresses a few 4 KiB samples spread over the run (≈ 1 % of it) with the same context and level; if
/// not one of them shrinks by at least 1/16, the whole run is stored raw. A run whose samples all miss its
/// compressible parts is stored raw too (larger, never wrong); short runs are simply compressed.
final class CompressibilityProbe {
    static let sampleSize = 4096
    static let samples = 8
    /// Runs shorter than this are compressed without probing (the probe would cost as much).
    static let minimumRun = 16 * sampleSize

    private let output: UnsafeMutableRawPointer

    init() { output = .allocate(byteCount: Self.sampleSize, alignment: 64) }

    deinit { output.deallocate() }

    func worthCompressing(_ source: UnsafeRawPointer, count: Int, with compressor: ZstdCompressor, level: Int32) -> Bool {
        guard count >= Self.minimumRun else { return true }
        let stride = (count - Self.sampleSize) / (Self.samples - 1) / Self.sampleSize * Self.sampleSize
        for sample in 0..<Self.samples {
            let capacity = Self.sampleSize - Self.sampleSize / 16
            if compressor.compress(source + sample * stride, count: Self.sampleSize, into: output, capacity: capacity,
                                   level: level) != nil {
                return true
            }
        }
        return false
    }
}
