/// virtio-blk feature bits (virtio 1.2 §5.2.3) this device can offer.
public enum VirtioBlockFeature {
    public static let segMax: UInt64 = 1 << 2
    public static let readOnly: UInt64 = 1 << 5
    public static let blockSize: UInt64 = 1 << 6
    public static let flush: UInt64 = 1 << 9
    public static let multiQueue: UInt64 = 1 << 12
    public static let discard: UInt64 = 1 << 13
    public static let writeZeroes: UInt64 = 1 << 14
}

/// The device configuration space of virtio-blk (virtio 1.2 §5.2.4), up to `write_zeroes_may_unmap`
/// as Cloud Hypervisor exposes it. Fields of features not offered stay 0.
struct BlockConfigSpace {
    /// Segments in one DISCARD or WRITE_ZEROES request: Linux's own cap, so it never splits for us.
    static let maxDiscardSegments: UInt32 = 256

    var capacity: UInt64
    var segMax: UInt32
    var blockSize: UInt32
    var numQueues: UInt16
    /// DISCARD and WRITE_ZEROES are offered.
    var discard: Bool

    /// The little-endian bytes a driver reads.
    var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: 60)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { b.replaceSubrange(offset..<offset + $0.count, with: $0) }
        }
        put(capacity, at: 0)
        put(segMax, at: 12)
        put(blockSize, at: 20)
        put(numQueues, at: 34)
        if discard {
            put(UInt32.max, at: 36)                   // max_discard_sectors
            put(Self.maxDiscardSegments, at: 40)      // max_discard_seg
            put(blockSize / 512, at: 44)              // discard_sector_alignment
            put(UInt32.max, at: 48)                   // max_write_zeroes_sectors
            put(Self.maxDiscardSegments, at: 52)      // max_write_zeroes_seg
            put(UInt8(1), at: 56)                     // write_zeroes_may_unmap
        }
        return b
    }
}
