import CZstd

/// zstd as the snapshot writer and the migration engine use it: per-thread contexts reused across frames.
public enum Zstd {
    /// The compression levels this libzstd accepts (negative levels are faster, higher ones smaller).
    public static var levels: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }
}

/// libzstd could not allocate a context (out of memory).
public struct ZstdError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// A zstd compression context owned by one thread (contexts are reused across chunks: allocating one per
/// chunk would cost more than compressing a mostly-zero chunk).
public final class ZstdCompressor {
    private let context: OpaquePointer

    public init() throws(ZstdError) {
        guard let context = ZSTD_createCCtx() else {
            throw ZstdError(description: "zstd: cannot allocate a compression context")
        }
        self.context = context
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `source` into at most `capacity` bytes; nil if it does not fit (the caller stores raw).
    public func compress(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutableRawPointer,
                         capacity: Int, level: Int32) -> Int? {
        guard capacity > 0 else { return nil }
        let n = ZSTD_compressCCtx(context, destination, capacity, source, count, level)
        return ZSTD_isError(n) != 0 ? nil : n
    }

    /// Compresses the concatenation of `sources` as one frame into at most `capacity` bytes; nil if it does
    /// not fit (the caller sends them raw). Scattered runs of guest memory become one frame without being
    /// gathered first: zstd's streaming API takes them one after the other.
    public func compress(_ sources: [UnsafeRawBufferPointer], into destination: UnsafeMutableRawPointer,
                         capacity: Int, level: Int32) -> Int? {
        guard capacity > 0, !sources.isEmpty else { return nil }
        ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        // The size in the frame header lets zstd pick a window no larger than the batch.
        ZSTD_CCtx_setPledgedSrcSize(context, UInt64(sources.reduce(0) { $0 + $1.count }))
        var output = ZSTD_outBuffer(dst: destination, size: capacity, pos: 0)
        for (index, source) in sources.enumerated() {
            let last = index == sources.count - 1
            var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while true {
                let pending = ZSTD_compressStream2(context, &output, &input, last ? ZSTD_e_end : ZSTD_e_continue)
                if ZSTD_isError(pending) != 0 { return nil }
                if last ? pending == 0 : input.pos == input.size { break }
                if output.pos == output.size { return nil }
            }
        }
        return output.pos
    }
}

/// A zstd decompression context owned by one thread.
public final class ZstdDecompressor {
    private let context: OpaquePointer

    public init() throws(ZstdError) {
        guard let context = ZSTD_createDCtx() else {
            throw ZstdError(description: "zstd: cannot allocate a decompression context")
        }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses one frame straight into `destination`, which must receive exactly `count` bytes.
    /// Returns nil on success, or what zstd says is wrong.
    public func decompress(_ source: UnsafeRawPointer, count sourceCount: Int, into destination: UnsafeMutableRawPointer,
                           count: Int) -> String? {
        let n = ZSTD_decompressDCtx(context, destination, count, source, sourceCount)
        if ZSTD_isError(n) != 0 { return "zstd: " + String(cString: ZSTD_getErrorName(n)) }
        if n != count { return "zstd frame holds \(n) bytes, expected \(count)" }
        return nil
    }

    /// Decompresses the one frame in `source` straight into `destinations`, filling each exactly, in order
    /// (scattered guest pages, no staging copy). Returns nil on success, or what is wrong: corrupt data, a
    /// frame that holds fewer or more bytes than the destinations, or bytes after the frame.
    public func decompress(_ source: UnsafeRawBufferPointer, into destinations: [UnsafeMutableRawBufferPointer]) -> String? {
        ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        let expected = destinations.reduce(0) { $0 + $1.count }
        var input = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
        var produced = 0
        // zstd's hint of what is left to do: 0 once the frame is complete and flushed.
        var pending = 1
        /// One decompression step into `output`; a step that moves nothing means the input ran out.
        func step(_ output: inout ZSTD_outBuffer) -> String? {
            let before = (input.pos, output.pos)
            pending = ZSTD_decompressStream(context, &output, &input)
            if ZSTD_isError(pending) != 0 { return "zstd: " + String(cString: ZSTD_getErrorName(pending)) }
            if pending != 0 && before == (input.pos, output.pos) {
                return "the zstd frame is cut off after \(produced + output.pos) of the expected \(expected) bytes"
            }
            return nil
        }
        for target in destinations {
            var output = ZSTD_outBuffer(dst: target.baseAddress, size: target.count, pos: 0)
            while output.pos < output.size {
                if pending == 0 { return "the zstd frame holds \(produced + output.pos) bytes, expected \(expected)" }
                if let error = step(&output) { return error }
            }
            produced += target.count
        }
        // Every destination is full: the frame must end here. One spare byte catches a longer frame.
        var spare: UInt8 = 0
        while pending != 0 {
            let problem: String? = withUnsafeMutableBytes(of: &spare) { byte in
                var output = ZSTD_outBuffer(dst: byte.baseAddress, size: 1, pos: 0)
                if let error = step(&output) { return error }
                return output.pos > 0 ? "the zstd frame holds more than the expected \(expected) bytes" : nil
            }
            if let problem { return problem }
        }
        if input.pos != input.size { return "\(input.size - input.pos) bytes follow the zstd frame" }
        return nil
    }
}
