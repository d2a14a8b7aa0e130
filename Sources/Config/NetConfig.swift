/// Whether the VMM connects to a vhost-user backend's socket or listens on it (CH's VhostMode).
public enum VhostMode: String, Codable, Sendable, Equatable {
    case Client, Server
}

/// A virtio-net device (CH's NetConfig, field for field; `--net`, `vm.add-net`).
public struct NetConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var tap: String?
    public var ip: String?
    public var mask: String?
    /// The guest's MAC; when nil the VMM picks a random locally administered one (and records it).
    public var mac: MacAddress?
    public var host_mac: MacAddress?
    public var mtu: UInt16?
    public var num_queues: Int
    public var queue_size: UInt16
    public var vhost_user: Bool
    public var vhost_socket: String?
    public var vhost_mode: VhostMode
    /// Tap file descriptors. The numbers only mean something in the process that opened them: from JSON they
    /// decode as -1 each (their count survives); the real ones arrive as SCM_RIGHTS with the request.
    public var fds: [Int32]?
    public var rate_limiter_config: RateLimiterConfig?
    public var offload_tso: Bool
    public var offload_ufo: Bool
    public var offload_csum: Bool

    public static let defaultNumQueues = 2
    public static let defaultQueueSize: UInt16 = 256

    public init(tap: String? = nil, mac: MacAddress? = nil, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.tap = tap
        ip = nil
        mask = nil
        self.mac = mac
        host_mac = nil
        mtu = nil
        num_queues = Self.defaultNumQueues
        queue_size = Self.defaultQueueSize
        vhost_user = false
        vhost_socket = nil
        vhost_mode = .Client
        fds = nil
        rate_limiter_config = nil
        offload_tso = true
        offload_ufo = true
        offload_csum = true
    }

    enum CodingKeys: String, CodingKey {
        case tap, ip, mask, mac, host_mac, mtu, num_queues, queue_size, vhost_user, vhost_socket, vhost_mode, fds
        case rate_limiter_config, offload_tso, offload_ufo, offload_csum
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        tap = try c.decodeIfPresent(String.self, forKey: .tap)
        ip = try IPAddress.decode(c, .ip)
        mask = try IPAddress.decode(c, .mask)
        mac = try c.decodeIfPresent(MacAddress.self, forKey: .mac)
        host_mac = try c.decodeIfPresent(MacAddress.self, forKey: .host_mac)
        mtu = try c.decodeIfPresent(UInt16.self, forKey: .mtu)
        num_queues = try c.decode(.num_queues, default: Self.defaultNumQueues)
        queue_size = try c.decode(.queue_size, default: Self.defaultQueueSize)
        vhost_user = try c.decode(.vhost_user, default: false)
        vhost_socket = try c.decodeIfPresent(String.self, forKey: .vhost_socket)
        vhost_mode = try c.decode(.vhost_mode, default: .Client)
        fds = try c.decodeStaleFDs(.fds)
        rate_limiter_config = try c.decodeIfPresent(RateLimiterConfig.self, forKey: .rate_limiter_config)
        offload_tso = try c.decode(.offload_tso, default: true)
        offload_ufo = try c.decode(.offload_ufo, default: true)
        offload_csum = try c.decode(.offload_csum, default: true)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(tap, forKey: .tap)
        try c.encodeIfPresent(ip, forKey: .ip)
        try c.encodeIfPresent(mask, forKey: .mask)
        try c.encodeIfPresent(mac, forKey: .mac)
        try c.encodeIfPresent(host_mac, forKey: .host_mac)
        try c.encodeIfPresent(mtu, forKey: .mtu)
        try c.encode(num_queues, forKey: .num_queues)
        try c.encode(queue_size, forKey: .queue_size)
        try c.encode(vhost_user, forKey: .vhost_user)
        try c.encodeIfPresent(vhost_socket, forKey: .vhost_socket)
        try c.encode(vhost_mode, forKey: .vhost_mode)
        try c.encodeIfPresent(fds, forKey: .fds)
        try c.encodeIfPresent(rate_limiter_config, forKey: .rate_limiter_config)
        try c.encode(offload_tso, forKey: .offload_tso)
        try c.encode(offload_ufo, forKey: .offload_ufo)
        try c.encode(offload_csum, forKey: .offload_csum)
    }

    /// `--net tap=…,ip=…,mask=…,mac=…,host_mac=…,mtu=N,fd=[3,4],num_queues=N,queue_size=N,id=…,vhost_user=on,
    /// socket=…,vhost_mode=client|server,bw_*=…,ops_*=…,offload_tso=on,offload_ufo=on,offload_csum=on,
    /// iommu=on,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> NetConfig {
        let p = try OptionParser(
            flag: "--net", input: input,
            known: ["tap", "ip", "mask", "mac", "host_mac", "offload_tso", "offload_ufo", "offload_csum", "mtu",
                    "queue_size", "num_queues", "vhost_user", "socket", "vhost_mode", "fd"]
                + RateLimiterConfig.options + PciDeviceCommonConfig.optionsWithIOMMU)
        var n = NetConfig(tap: p.string("tap"), mac: try p.mac("mac"))
        n.pci_common = try PciDeviceCommonConfig(parsing: p)
        n.ip = try p.ipAddress("ip")
        n.mask = try p.ipAddress("mask")
        n.host_mac = try p.mac("host_mac")
        n.offload_tso = try p.bool("offload_tso") ?? true
        n.offload_ufo = try p.bool("offload_ufo") ?? true
        n.offload_csum = try p.bool("offload_csum") ?? true
        n.mtu = try p.integer("mtu")
        n.queue_size = try p.integer("queue_size") ?? Self.defaultQueueSize
        n.num_queues = try p.integer("num_queues") ?? Self.defaultNumQueues
        n.vhost_user = try p.bool("vhost_user") ?? false
        n.vhost_socket = p.string("socket")
        n.vhost_mode = try p.choice("vhost_mode", ["client": .Client, "server": .Server]) ?? .Client
        n.fds = try p.integers("fd", as: Int32.self)
        n.rate_limiter_config = try RateLimiterConfig.parse(p)
        return n
    }
}
