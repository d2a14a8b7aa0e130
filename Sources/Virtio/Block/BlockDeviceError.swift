import Glibc

/// Why a virtio-blk device could not be created or restored. Each message names the image and what to change.
public enum BlockDeviceError: Error, CustomStringConvertible, Equatable {
    case imageMissing(path: String)
    case notADisk(path: String)
    case notReadable(path: String, errno: Int32)
    /// The image can be read but not opened for writing (permissions, immutable file, read-only mount).
    case notWritable(path: String, errno: Int32)
    case directUnsupported(path: String, errno: Int32)
    case openFailed(path: String, errno: Int32)
    case invalidQueueCount(Int)
    case invalidQueueSize(UInt16)
    case serialTooLong(String)
    case unsupportedStateVersion(UInt32)
    case badState(String)
    /// The image is not the size it had when the snapshot was taken: the guest's view would be wrong.
    case sizeChanged(path: String, savedSectors: UInt64, currentSectors: UInt64)

    public var description: String {
        switch self {
        case let .imageMissing(path):
            return "disk image \(path) does not exist"
        case let .notADisk(path):
            return "disk image \(path) is neither a regular file nor a block device"
        case let .notReadable(path, e):
            return "cannot read disk image \(path): \(errnoText(e))"
        case let .notWritable(path, e):
            return "cannot open disk image \(path) for writing: \(errnoText(e)); use readonly=on to attach it read-only"
        case let .directUnsupported(path, e):
            return "the filesystem holding disk image \(path) does not support O_DIRECT (\(errnoText(e))); use direct=off"
        case let .openFailed(path, e):
            return "cannot open disk image \(path): \(errnoText(e))"
        case let .invalidQueueCount(n):
            return "num_queues=\(n) is invalid: a disk needs 1 to \(UInt16.max) queues"
        case let .invalidQueueSize(n):
            return "queue_size=\(n) is invalid: use a power of two from 2 to 32768"
        case let .serialTooLong(serial):
            return "serial \"\(serial)\" is \(serial.utf8.count) bytes long: virtio-blk serials hold at most 20"
        case let .unsupportedStateVersion(v):
            return "virtio-blk state version \(v) is not supported by this VMM (it knows version 1)"
        case let .badState(why):
            return "virtio-blk state is unreadable: \(why)"
        case let .sizeChanged(path, saved, current):
            return "disk image \(path) now holds \(current) sectors but the snapshot was taken with \(saved): "
                + "restore with the image the VM was using"
        }
    }
}
