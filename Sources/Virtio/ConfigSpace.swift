/// Reads of a device's configuration space (virtio 1.2 §4.1.4.6), served from its bytes.
public enum ConfigSpace {
    /// Copies the bytes at `offset` into `data`; bytes past the end read as 0, so a driver probing a
    /// field the device does not have sees "absent" rather than stale memory.
    public static func read(_ bytes: [UInt8], offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        data.initializeMemory(as: UInt8.self, repeating: 0)
        guard offset < UInt64(bytes.count) else { return }
        let start = Int(offset)
        let n = min(data.count, bytes.count - start)
        bytes.withUnsafeBytes { data.baseAddress?.copyMemory(from: $0.baseAddress! + start, byteCount: n) }
    }
}
