import Foundation
import Synchronization

/// virtio-console (virtio 1.2 §5.3) as Cloud Hypervisor builds it: one port, no MULTIPORT, the
/// terminal size in config space (F_SIZE) when the backend is a tty. Host input goes to receiveq 0,
/// guest output from transmitq 1 to the backend.
///
/// Threads: config reads on vCPU threads; queues and the backend's input on the device thread;
/// `terminalResized` from wherever the VMM handles SIGWINCH.
public final class VirtioConsole: VirtioDevice, @unchecked Sendable {
    public let deviceType = VirtioDeviceType.console
    public let queueMaxSizes: [UInt16] = [256, 256]
    public let deviceFeatures: UInt64
    public let deviceStateVersion: UInt32 = 1
    public let counters: [String: UInt64] = [:]

    /// The backend's path (the pty to attach to, the file, the socket), for the VMM to print and record.
    public var path: String? { endpoint.path }

    static let featureSize: UInt64 = 1 << 0

    private let endpoint: ConsoleEndpoint
    private let input = ConsoleInputBuffer()
    private let runner = DeviceRunner()
    private let interrupt = Mutex<(any VirtioInterrupt)?>(nil)

    /// Opens `backend` (see `ConsoleBackend`; `off` is no device at all).
    public convenience init(backend: ConsoleBackend) throws(ConsoleBackendError) {
        self.init(endpoint: try ConsoleEndpoint(backend))
    }

    public init(endpoint: ConsoleEndpoint) {
        self.endpoint = endpoint
        deviceFeatures = endpoint.windowSize != nil ? Self.featureSize : 0
    }

    deinit { runner.stop() }

    // MARK: config space (§5.3.4): cols u16, rows u16, max_nr_ports u32, emerg_wr u32

    public func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        let size = endpoint.windowSize ?? (0, 0)
        var config = [UInt8](repeating: 0, count: 12)
        config[0] = UInt8(size.cols & 0xff); config[1] = UInt8(size.cols >> 8)
        config[2] = UInt8(size.rows & 0xff); config[3] = UInt8(size.rows >> 8)
        config[4] = 1
        for i in 0..<data.count {
            let at = Int(offset) + i
            data[i] = at < config.count ? config[at] : 0
        }
    }

    /// emerg_wr is the only writable field and EMERG_WRITE is not offered.
    public func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer) {}

    /// Tells the driver the terminal changed size (call on SIGWINCH); a no-op without F_SIZE.
    public func terminalResized() {
        guard deviceFeatures & Self.featureSize != 0 else { return }
        interrupt.withLock { $0 }?.signalConfigChange()
    }

    // MARK: lifecycle

    public func activate(_ activation: VirtioActivation) throws {
        try runner.start(name: "virtio-console", queueEvents: activation.queueEvents) { thread in
            ConsoleWorker(thread: thread, activation: activation, endpoint: endpoint, input: input)
        }
        interrupt.withLock { $0 = activation.interrupt }
    }

    /// Stops serving; input typed meanwhile stays queued for the next driver.
    public func reset() {
        interrupt.withLock { $0 = nil }
        runner.stop()
    }

    public func pause() { runner.pause() }
    public func resume() { runner.resume() }

    // MARK: state, version 1: the input bytes not yet delivered to the guest

    public func saveDeviceState() throws -> Data { Data(input.bytes) }

    public func restoreDeviceState(_ data: Data, version: UInt32) throws {
        guard version == deviceStateVersion else {
            throw VirtioError.badRequest("virtio-console state version \(version): expected \(deviceStateVersion)")
        }
        input.replace(with: [UInt8](data.prefix(ConsoleInputBuffer.capacity)))
    }
}

/// Host input waiting for receive buffers, bounded: when full, the backend is not read (its own
/// buffer, then the sender, waits) rather than input being dropped. The device thread fills and
/// drains it; the control thread saves and restores it while the device is paused or reset.
final class ConsoleInputBuffer: Sendable {
    static let capacity = 64 << 10
    private let pending = Mutex<[UInt8]>([])

    var bytes: [UInt8] { pending.withLock { $0 } }
    var room: Int { pending.withLock { Self.capacity - $0.count } }
    var isEmpty: Bool { pending.withLock { $0.isEmpty } }

    func append(_ bytes: ArraySlice<UInt8>) { pending.withLock { $0 += bytes } }
    func replace(with bytes: [UInt8]) { pending.withLock { $0 = bytes } }
    /// Hands the oldest bytes to `consume`, which returns how many it took.
    func drain(_ consume: ([UInt8]) throws -> Int) rethrows {
        try pending.withLock { buffer in
            let taken = try consume(buffer)
            buffer.removeFirst(taken)
        }
    }
}
