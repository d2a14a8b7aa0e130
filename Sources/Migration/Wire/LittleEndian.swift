/// Little-endian fields for the wire format (x86 hosts are little-endian too, but the format says so).
extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// The integer at `offset`; the caller has checked that it lies inside the array.
    func le<T: FixedWidthInteger>(_ offset: Int, as type: T.Type = T.self) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
