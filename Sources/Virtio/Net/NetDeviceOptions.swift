/// How to build a virtio-net device with a TAP backend (Cloud Hypervisor's `--net` fields, as plain values).
public struct NetDeviceOptions: Sendable, Equatable {
    /// An existing TAP to attach to, or a name to create; nil creates `vmtap<N>`.
    public var tap: String?
    /// IPv4 address and netmask for the host side of the TAP (not set when nil; mask defaults to
    /// 255.255.255.0 when only `ip` is given).
    public var ip: String?
    public var mask: String?
    /// The guest's MAC; nil picks a random locally administered one (read it back from `VirtioNet.mac`).
    public var mac: [UInt8]?
    /// The TAP interface's own MAC; nil keeps the kernel's.
    public var hostMac: [UInt8]?
    /// Sets the TAP's MTU and offers it to the guest (VIRTIO_NET_F_MTU); nil leaves both alone.
    public var mtu: UInt16?
    /// RX and TX queues together (pairs × 2); more than 2 makes a multi-queue TAP and offers MQ.
    public var numQueues: Int
    public var queueSize: UInt16
    /// Checksum offload both ways; TSO and UFO build on it (as in Cloud Hypervisor, they need it).
    public var offloadCsum: Bool
    public var offloadTso: Bool
    public var offloadUfo: Bool

    public static let defaultNumQueues = 2
    public static let defaultQueueSize: UInt16 = 256

    public init(tap: String? = nil, ip: String? = nil, mask: String? = nil, mac: [UInt8]? = nil,
                hostMac: [UInt8]? = nil, mtu: UInt16? = nil, numQueues: Int = defaultNumQueues,
                queueSize: UInt16 = defaultQueueSize, offloadCsum: Bool = true, offloadTso: Bool = true,
                offloadUfo: Bool = true) {
        self.tap = tap
        self.ip = ip
        self.mask = mask
        self.mac = mac
        self.hostMac = hostMac
        self.mtu = mtu
        self.numQueues = numQueues
        self.queueSize = queueSize
        self.offloadCsum = offloadCsum
        self.offloadTso = offloadTso
        self.offloadUfo = offloadUfo
    }
}
