import Foundation
import Glibc
import Synchronization

/// virtio-vsock (virtio 1.2 §5.10) with Cloud Hypervisor's hybrid host side: the guest's CID in config
/// space, streams to the host relayed to UNIX sockets under `socketPath` (see `VsockMuxer`).
///
/// Connections cannot be saved: after a restore the device sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
/// when it starts again, and the guest drops its sockets (as Cloud Hypervisor and Firecracker do).
///
/// Threads: config reads on vCPU threads (immutable); everything else on the device thread, apart
/// from the lifecycle calls on the control thread.
public final class VirtioVsock: VirtioDevice, @unchecked Sendable {
    public let deviceType = VirtioDeviceType.vsock
    public let queueMaxSizes: [UInt16] = [256, 256, 256]
    /// Stream sockets only; without feature bits a driver assumes VIRTIO_VSOCK_F_STREAM.
    public let deviceFeatures: UInt64 = 0
    public let deviceStateVersion: UInt32 = 1
    public let counters: [String: UInt64] = [:]

    public let cid: UInt64
    public let socketPath: String

    /// The listener and the socket file it owns; set once, before the device is first activated.
    private var listenFD: Int32 = -1
    private var socketFile: UnixSocket.FileIdentity?
    private let takeOver: Bool
    private let restored = Atomic<Bool>(false)
    private let runner = DeviceRunner()

    /// Listens on `socketPath` (a stale socket file is replaced; one a live process accepts on is refused).
    ///
    /// `takeOver`: the destination of a migration, whose source may be a live process on this host holding
    /// the path. The path is taken over only when the device is activated, i.e. when the migrated state of
    /// a driven device is applied, once the source has paused its guest: a destination built while memory
    /// still arrives (and whose fresh state is put back once to warm it up) must not steal the source's
    /// connections, nor leave it without its path if the migration fails before that.
    public init(cid: UInt64, socketPath: String, takeOver: Bool = false) throws(VsockError) {
        guard cid >= 3, cid < UInt64(UInt32.max) else { throw .invalidCID(cid) }
        self.cid = cid
        self.socketPath = socketPath
        self.takeOver = takeOver
        if !takeOver { try listen() }
    }

    private func listen() throws(VsockError) {
        do { listenFD = try UnixSocket.listen(at: socketPath, takeOver: takeOver) } catch { throw .socket(error) }
        socketFile = UnixSocket.fileIdentity(socketPath)
    }

    deinit {
        runner.stop()
        if listenFD >= 0 {
            close(listenFD)
            UnixSocket.unlink(socketPath, ifStill: socketFile)
        }
    }

    // MARK: config space (§5.10.4): guest_cid u64

    public func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        let config = withUnsafeBytes(of: cid.littleEndian) { Array($0) }
        for i in 0..<data.count {
            let at = Int(offset) + i
            data[i] = at < config.count ? config[at] : 0
        }
    }

    public func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer) {}

    // MARK: lifecycle

    public func activate(_ activation: VirtioActivation) throws {
        if listenFD < 0 { try listen() }
        let reset = restored.exchange(false, ordering: .acquiringAndReleasing)
        try runner.start(name: "virtio-vsock", queueEvents: activation.queueEvents) { thread in
            try VsockMuxer(thread: thread, activation: activation, guestCid: cid, listenFD: listenFD,
                           socketPath: socketPath, transportReset: reset)
        }
    }

    /// Stops serving and closes every connection (host clients see EOF).
    public func reset() { runner.stop() }
    public func pause() { runner.pause() }
    public func resume() { runner.resume() }

    // MARK: state, version 1: guest_cid u64 (connections are not saved; see the type's comment)

    public func saveDeviceState() throws -> Data {
        withUnsafeBytes(of: cid.littleEndian) { Data($0) }
    }

    public func restoreDeviceState(_ data: Data, version: UInt32) throws {
        guard version == deviceStateVersion, data.count == 8 else {
            throw VirtioError.badRequest("virtio-vsock state version \(version), \(data.count) bytes: expected version \(deviceStateVersion), 8 bytes")
        }
        let saved = data.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard saved == cid else {
            throw VirtioError.badRequest("virtio-vsock state is for cid \(saved), the device has cid \(cid)")
        }
        restored.store(true, ordering: .releasing)
    }
}
