import Foundation
import Synchronization

/// virtio-net (virtio 1.2 §5.1) on a host TAP interface, as Cloud Hypervisor builds it: one RX/TX
/// queue pair per TAP queue, a control queue (multi-queue and receive-offload switching), the MAC and
/// link status in config space, checksum/TSO/UFO offloads passed straight through the vnet header.
///
/// Threads: config reads on vCPU threads (the MAC is locked: a restore may set it); queues on one
/// device thread for all pairs; the rest on the control thread.
public final class VirtioNet: VirtioDevice, @unchecked Sendable {
    public let deviceType = VirtioDeviceType.net
    public let queueMaxSizes: [UInt16]
    public let deviceFeatures: UInt64
    public let deviceStateVersion: UInt32 = 1

    /// The TAP interface in use (the name given, or the `vmtap<N>` the kernel picked).
    public var tapName: String { tap.name }
    /// The guest's MAC (given, random, or restored from a snapshot).
    public var mac: [UInt8] { macAddress.withLock { $0 } }

    private let tap: Tap
    private let queuePairs: Int
    private let mtu: UInt16?
    private let macAddress: Mutex<[UInt8]>
    private let stats = NetCounters()
    private let control = NetControlState()
    private let runner = DeviceRunner()

    public init(_ options: NetDeviceOptions) throws(NetError) {
        guard options.numQueues >= 2, options.numQueues % 2 == 0, options.numQueues <= 32 else {
            throw .invalidQueueCount(options.numQueues)
        }
        guard options.queueSize >= 2, options.queueSize <= 32768, options.queueSize & (options.queueSize - 1) == 0 else {
            throw .invalidQueueSize(options.queueSize)
        }
        if let mac = options.mac { try MACAddress.validate(mac) }
        if let hostMac = options.hostMac { try MACAddress.validate(hostMac) }
        if let ip = options.ip { _ = try Tap.ipv4(ip, option: "ip") }
        if let mask = options.mask { _ = try Tap.ipv4(mask, option: "mask") }

        queuePairs = options.numQueues / 2
        mtu = options.mtu
        tap = try Tap(name: options.tap, queuePairs: queuePairs)
        try tap.configure(ip: options.ip, mask: options.mask, hostMac: options.hostMac, mtu: options.mtu)
        // Nothing is offloaded to the guest until it acknowledges it can take it (activate).
        try tap.setOffload(0)
        macAddress = Mutex(options.mac ?? MACAddress.random())

        var features = NetFeature.mac | NetFeature.status | NetFeature.ctrlVq
            | NetFeature.offloads(csum: options.offloadCsum, tso: options.offloadTso, ufo: options.offloadUfo)
        if options.mtu != nil { features |= NetFeature.mtu }
        if queuePairs > 1 { features |= NetFeature.mq }
        deviceFeatures = features
        queueMaxSizes = Array(repeating: options.queueSize, count: 2 * queuePairs + 1)
    }

    deinit { runner.stop() }

    // MARK: config space (§5.1.4): mac[6], status u16, max_virtqueue_pairs u16, mtu u16

    private static let linkUp: UInt16 = 1

    public func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        var config = mac
        for value in [Self.linkUp, UInt16(queuePairs), mtu ?? 0] {
            config += [UInt8(value & 0xff), UInt8(value >> 8)]
        }
        for i in 0..<data.count {
            let at = Int(offset) + i
            data[i] = at < config.count ? config[at] : 0
        }
    }

    /// The configuration is read-only for a modern driver (the MAC changes only via CTRL_MAC, not offered).
    public func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer) {}

    // MARK: lifecycle

    public func activate(_ activation: VirtioActivation) throws {
        try runner.start(name: "virtio-net", queueEvents: activation.queueEvents) { thread in
            try NetWorker(thread: thread, activation: activation, tap: tap, queuePairs: queuePairs,
                          counters: stats, control: control)
        }
    }

    public func reset() {
        runner.stop()
        control.reset()
    }

    public func pause() { runner.pause() }
    public func resume() { runner.resume() }

    public var counters: [String: UInt64] { stats.values }

    // MARK: state, version 1: mac[6], active pairs u16, receive offloads u64 (all ones: not set yet)

    public func saveDeviceState() throws -> Data {
        var data = Data(mac)
        let (pairs, offloads) = control.values
        withUnsafeBytes(of: UInt16(pairs).littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: (offloads ?? .max).littleEndian) { data.append(contentsOf: $0) }
        return data
    }

    public func restoreDeviceState(_ data: Data, version: UInt32) throws {
        let bytes = [UInt8](data)
        guard version == deviceStateVersion, bytes.count == 16 else {
            throw VirtioError.badRequest("virtio-net state version \(version), \(bytes.count) bytes: expected version \(deviceStateVersion), 16 bytes")
        }
        let mac = Array(bytes[0..<6])
        do { try MACAddress.validate(mac) } catch { throw VirtioError.badRequest("virtio-net state: \(error)") }
        macAddress.withLock { $0 = mac }
        let pairs = bytes[6..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        let offloads = bytes[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        control.set(activePairs: min(max(pairs, 1), queuePairs), guestOffloads: offloads == .max ? nil : offloads)
    }
}

/// The `vm.counters` of a net device, bumped by its thread and read from the control thread.
final class NetCounters: Sendable {
    let rxBytes = Atomic<UInt64>(0), rxFrames = Atomic<UInt64>(0)
    let txBytes = Atomic<UInt64>(0), txFrames = Atomic<UInt64>(0)

    var values: [String: UInt64] {
        ["rx_bytes": rxBytes.load(ordering: .relaxed), "rx_frames": rxFrames.load(ordering: .relaxed),
         "tx_bytes": txBytes.load(ordering: .relaxed), "tx_frames": txFrames.load(ordering: .relaxed)]
    }
}

/// What the driver set through the control queue, kept across pause/snapshot/restore: the device
/// thread writes it, the control thread saves and restores it (while the device is paused or reset).
final class NetControlState: Sendable {
    private let state = Mutex<(activePairs: Int, guestOffloads: UInt64?)>((1, nil))

    var values: (activePairs: Int, guestOffloads: UInt64?) { state.withLock { $0 } }
    func set(activePairs: Int, guestOffloads: UInt64?) { state.withLock { $0 = (activePairs, guestOffloads) } }
    func reset() { set(activePairs: 1, guestOffloads: nil) }
}
