import Foundation
import Glibc
import Memory

/// Why a virtio-rng device could not be created.
public enum RngError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, errno: Int32)
    case notReadable(path: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, e):
            return "cannot open entropy source \(path): \(errnoText(e)); set --rng src= to a readable file or device"
        case let .notReadable(path):
            return "entropy source \(path) is a directory; set --rng src= to a readable file or device"
        }
    }
}

/// A virtio entropy device (virtio 1.2 §5.4): fills each buffer the driver offers by reading the
/// source (CH's `src`, /dev/urandom by default). No config space, no features, no state.
public final class VirtioRng: VirtioDevice, @unchecked Sendable {
    public static let defaultSource = "/dev/urandom"

    public let deviceType = VirtioDeviceType.rng
    public let queueMaxSizes: [UInt16] = [256]
    public let deviceFeatures: UInt64 = 0
    public let source: String
    private let fd: Int32
    private let worker = QueueWorker(name: "virtio-rng")

    public init(source: String = VirtioRng.defaultSource) throws(RngError) {
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(path: source, errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT != S_IFDIR else {
            close(fd)
            throw .notReadable(path: source)
        }
        self.source = source
        self.fd = fd
    }

    deinit {
        worker.stop()
        close(fd)
    }

    public func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        ConfigSpace.read([], offset: offset, into: data)
    }

    public func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer) {}

    public func activate(_ activation: VirtioActivation) throws {
        try worker.start(activation) { [fd, memory = activation.memory] chain in
            Self.fill(chain.writable, from: fd, memory: memory)
        }
    }

    public func reset() { worker.stop() }
    public func pause() { worker.pause() }
    public func resume() { worker.resume() }

    public var counters: [String: UInt64] { [:] }
    public var deviceStateVersion: UInt32 { 1 }
    public func saveDeviceState() throws -> Data { Data() }
    public func restoreDeviceState(_ data: Data, version: UInt32) throws {}

    /// One read of the source into the buffers; returns the bytes it gave (0 when it failed or ended).
    private static func fill(_ buffers: [GuestBuffer], from fd: Int32, memory: GuestMemory) -> UInt32 {
        guard var vectors = try? memory.iovecs(buffers), !vectors.isEmpty else { return 0 }
        var n: Int
        repeat { n = readv(fd, &vectors, Int32(min(vectors.count, 1024))) } while n < 0 && errno == EINTR
        guard n > 0 else { return 0 }
        memory.markDirty(buffers)
        return UInt32(n)
    }
}
