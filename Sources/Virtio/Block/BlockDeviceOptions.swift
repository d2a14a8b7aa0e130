/// What a virtio-blk device is built from (the VMM maps CH's DiskConfig onto it).
public struct BlockDeviceOptions: Sendable, Equatable {
    /// A raw image: a regular file or a block device.
    public var path: String
    /// Offer VIRTIO_BLK_F_RO and open the image read-only.
    public var readonly: Bool
    /// Open with O_DIRECT: bypass the host page cache.
    public var direct: Bool
    /// More than one offers VIRTIO_BLK_F_MQ.
    public var numQueues: Int
    /// The maximum size of each queue: a power of two, 2…32768.
    public var queueSize: UInt16
    /// The GET_ID answer, at most 20 bytes; nil derives one from the image's device and inode numbers, as CH does.
    public var serial: String?

    public init(path: String, readonly: Bool = false, direct: Bool = false, numQueues: Int = 1,
                queueSize: UInt16 = 128, serial: String? = nil) {
        self.path = path
        self.readonly = readonly
        self.direct = direct
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.serial = serial
    }
}
