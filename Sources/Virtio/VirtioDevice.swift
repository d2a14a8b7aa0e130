import Foundation
import Hypervisor
import Memory

/// Virtio device types (virtio 1.2 §5); the PCI device id is 0x1040 + type.
public enum VirtioDeviceType: UInt32, Sendable {
    case net = 1, block = 2, console = 3, rng = 4, vsock = 19
}

/// Feature bits every device shares (virtio 1.2 §6). Device-specific bits live with each device.
public enum VirtioFeature {
    public static let ringIndirectDesc: UInt64 = 1 << 28
    public static let ringEventIdx: UInt64 = 1 << 29
    public static let version1: UInt64 = 1 << 32
}

/// How a device tells the driver that it used buffers or changed its configuration. Safe to call from
/// any thread; the transport turns it into an MSI-X message (an irqfd write) or a pending bit.
public protocol VirtioInterrupt: Sendable {
    func signalQueue(_ index: Int)
    func signalConfigChange()
}

/// Everything a device needs to run once the driver set DRIVER_OK (or a restore brought it back).
public struct VirtioActivation: @unchecked Sendable {
    public let memory: GuestMemory
    /// The features the driver acknowledged (a subset of what was offered).
    public let features: UInt64
    /// One per queue the device declared; a queue the driver did not enable has `isReady == false`.
    public let queues: [Virtqueue]
    /// Readable when the driver notified the matching queue (KVM ioeventfd, or the transport itself).
    public let queueEvents: [EventFD]
    public let interrupt: any VirtioInterrupt

    public init(memory: GuestMemory, features: UInt64, queues: [Virtqueue], queueEvents: [EventFD],
                interrupt: any VirtioInterrupt) {
        self.memory = memory
        self.features = features
        self.queues = queues
        self.queueEvents = queueEvents
        self.interrupt = interrupt
    }
}

/// One virtio device behind a transport (virtio-pci here). The transport owns feature negotiation,
/// queue configuration, MSI-X and the device status; the device owns its config space, its backend
/// and the thread that serves its queues.
///
/// Threads: `readConfig`/`writeConfig` run on vCPU threads; `activate`, `reset`, `pause`, `resume`
/// and the state calls run on the VMM's control thread (or a vCPU thread for activate/reset, when
/// the guest writes the status register). Queue processing never runs on either: each device has
/// its own `DeviceThread`.
public protocol VirtioDevice: AnyObject, Sendable {
    var deviceType: VirtioDeviceType { get }
    /// The maximum size of each queue, in queue index order (their count is the number of queues).
    var queueMaxSizes: [UInt16] { get }
    /// Device-specific feature bits; the transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX.
    var deviceFeatures: UInt64 { get }

    /// Device configuration space (virtio 1.2 §4.1.4.6): unread bytes must be filled (with 0).
    func readConfig(offset: UInt64, data: UnsafeMutableRawBufferPointer)
    func writeConfig(offset: UInt64, data: UnsafeRawBufferPointer)

    /// Starts serving the queues. A backend that cannot start throws (the transport then sets
    /// DEVICE_NEEDS_RESET and the driver sees it).
    func activate(_ activation: VirtioActivation) throws
    /// Stops serving (driver reset or VM teardown): joins the device thread, forgets the queues. Idempotent.
    func reset()
    /// Parks the device thread after the requests it is handling completed; nothing touches guest
    /// memory until `resume`. Used by vm.pause, snapshots and the last phase of a migration.
    func pause()
    /// Unparks the device thread and processes every queue once: a notification may have been
    /// consumed before a snapshot was taken, and a restored queue must not wait for the next kick.
    func resume()

    /// `vm.counters` entries of this device (e.g. read_bytes, write_ops).
    var counters: [String: UInt64] { get }

    /// The version of the device-specific state (`saveDeviceState`); bumped when its shape changes.
    var deviceStateVersion: UInt32 { get }
    /// Device-specific state beyond what the transport saves (queues, features, status), taken while
    /// paused. Empty when the device has none.
    func saveDeviceState() throws -> Data
    /// Applied before `activate` on restore.
    func restoreDeviceState(_ data: Data, version: UInt32) throws
}
