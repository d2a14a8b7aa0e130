import Glibc

/// The I/O a virtio-blk device does on its image, called from several I/O threads at once.
/// `DiskImage` is the real one; tests wrap it to hold requests in flight.
protocol BlockBackend: AnyObject, Sendable {
    /// Fills `iovecs` from the image, starting at byte `offset`.
    func read(into iovecs: [iovec], at offset: UInt64) throws(DiskIOError)
    /// Writes `iovecs` to the image, starting at byte `offset`.
    func write(from iovecs: [iovec], at offset: UInt64) throws(DiskIOError)
    /// Makes completed writes durable.
    func flush() throws(DiskIOError)
    /// Deallocates a byte range; it reads as zeros afterwards.
    func discard(offset: UInt64, length: UInt64) throws(DiskIOError)
    /// Zeroes a byte range, deallocating it when `unmap` allows.
    func writeZeroes(offset: UInt64, length: UInt64, unmap: Bool) throws(DiskIOError)
}
