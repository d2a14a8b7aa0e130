import Foundation

/// A virtio-blk device (virtio 1.2 §5.2) backed by a raw image, with preadv/pwritev straight between
/// the image and guest memory. With O_DIRECT the device thread pops requests and a pool of I/O threads
/// runs them, several at once; through the host page cache the device thread runs them itself (measured
/// 4× the random IOPS of the pool there: a copy costs less than a thread handoff).
public final class VirtioBlock: VirtioDevice, @unchecked Sendable {
    /// I/O threads per device at most: the queue depth a guest commonly keeps (Linux and fio use 32).
    static let maxIOThreads = 32

    public let deviceType = VirtioDeviceType.block
    public let queueMaxSizes: [UInt16]
    public let deviceFeatures: UInt64
    public let options: BlockDeviceOptions
    private let config: [UInt8]
    private let handler: BlockRequestHandler
    private let runner = DeviceRunner()
    private let ioThreads: Int

    /// Opens the image and fixes what the driver will see; throws what the user must change.
    public convenience init(_ options: BlockDeviceOptions) throws(BlockDeviceError) {
        try self.init(options, ioThreads: options.direct ? Self.maxIOThreads : 0) { $0 }
    }

    /// Runs requests on up to `ioThreads` I/O threads (0: on the device thread); `backend` wraps the
    /// opened image (tests hold requests in flight there).
    init(_ options: BlockDeviceOptions, ioThreads: Int, backend: (DiskImage) -> any BlockBackend) throws(BlockDeviceError) {
        guard (1...Int(UInt16.max)).contains(options.numQueues) else { throw .invalidQueueCount(options.numQueues) }
        let size = options.queueSize
        guard size >= 2, size <= 32768, size & (size - 1) == 0 else { throw .invalidQueueSize(size) }
        if let serial = options.serial, serial.utf8.count > BlockRequestHandler.serialLength {
            throw .serialTooLong(serial)
        }
        let disk = try DiskImage(path: options.path, readonly: options.readonly, direct: options.direct)
        self.options = options
        self.ioThreads = ioThreads
        handler = BlockRequestHandler(disk: backend(disk), size: disk.size, readonly: options.readonly,
                                      serial: options.serial ?? disk.identity)
        queueMaxSizes = Array(repeating: size, count: options.numQueues)
        var features = VirtioBlockFeature.segMax | VirtioBlockFeature.blockSize | VirtioBlockFeature.flush
        if options.readonly { features |= VirtioBlockFeature.readOnly }
        if options.numQueues > 1 { features |= VirtioBlockFeature.multiQueue }
        if !options.readonly { features |= VirtioBlockFeature.discard | VirtioBlockFeature.writeZeroes }
        deviceFeatures = features
        // Linux puts the header and the status in descriptors of their own: seg_max leaves room for them.
        config = BlockConfigSpace(capacity: handler.capacity, segMax: UInt32(size) - 2, blockSize: UInt32(disk.blockSize),
                                  numQueues: UInt16(options.numQueues), discard: !options.readonly).bytes
    }

    /// The image size in 512-byte sectors.
    public var capacity: UInt64 { handler.capacity }

    public func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        ConfigSpace.read(config, offset: offset, into: data)
    }

    /// Nothing is writable without VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
    public func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer) {}

    deinit { runner.stop() }

    public func activate(_ activation: VirtioActivation) throws {
        for queue in activation.queues { try queue.validate() }
        try runner.start(name: "virtio-blk", queueEvents: activation.queueEvents) { [handler, ioThreads] thread in
            let pool = ioThreads > 0 ? try BlockIOPool(name: "virtio-blk", maxThreads: ioThreads) : nil
            return try BlockWorker(thread: thread, activation: activation, handler: handler, pool: pool)
        }
    }

    /// Returns once the I/O in flight completed and the I/O threads exited.
    public func reset() { runner.stop() }
    /// Returns once no request is in flight: each one started has completed and was returned used.
    public func pause() { runner.pause() }
    public func resume() { runner.resume() }

    /// read_bytes, write_bytes, read_ops, write_ops.
    public var counters: [String: UInt64] { handler.counters.snapshot }

    private struct SavedState: Codable {
        /// Re-derived from the image on restore; saved to notice an image that changed size.
        var capacity: UInt64
    }

    public var deviceStateVersion: UInt32 { 1 }

    public func saveDeviceState() throws -> Data {
        try JSONEncoder().encode(SavedState(capacity: capacity))
    }

    public func restoreDeviceState(_ data: Data, version: UInt32) throws {
        guard version == deviceStateVersion else { throw BlockDeviceError.unsupportedStateVersion(version) }
        let saved: SavedState
        do { saved = try JSONDecoder().decode(SavedState.self, from: data) } catch {
            throw BlockDeviceError.badState("\(error)")
        }
        guard saved.capacity == capacity else {
            throw BlockDeviceError.sizeChanged(path: options.path, savedSectors: saved.capacity, currentSectors: capacity)
        }
    }
}
