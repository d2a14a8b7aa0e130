/// Helpers for byte-wide devices reached with wider accesses.
///
/// An ISA bus splits a 16- or 32-bit access to an 8-bit device into byte cycles at consecutive
/// addresses, so the legacy devices handle each byte as an access to `offset + i`.
extension UnsafeMutableRawBufferPointer {
    @inline(__always)
    func fill(with byte: UInt8) {
        for i in indices { self[i] = byte }
    }
}
