/// Disk image formats (CH's ImageType; PascalCase in JSON, `raw|qcow2|vhd|vhdx|vmdk` on the CLI).
/// `Unknown` means "detect from the file".
public enum ImageType: String, Codable, Sendable, Equatable, CaseIterable {
    case FlatVmdk, FixedVhd, Qcow2, Raw, Vhdx, Unknown

    static let cliNames: KeyValuePairs<String, ImageType> =
        ["raw": .Raw, "qcow2": .Qcow2, "vhd": .FixedVhd, "vhdx": .Vhdx, "vmdk": .FlatVmdk]
}

/// How much of the image file the VMM locks (CH's LockGranularityChoice; `byte-range|full` on the CLI).
public enum LockGranularity: String, Codable, Sendable, Equatable {
    case ByteRange, Full
}

/// Pins one virtqueue's worker to host CPUs (`queue_affinity=[0@[1,2]]`).
public struct VirtQueueAffinity: Codable, Sendable, Equatable {
    public var queue_index: UInt16
    public var host_cpus: [Int]

    public init(queue_index: UInt16, host_cpus: [Int]) {
        self.queue_index = queue_index
        self.host_cpus = host_cpus
    }
}

/// A virtio-blk disk (CH's DiskConfig, field for field; `--disk`, `vm.add-disk`).
public struct DiskConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var path: String?
    public var readonly: Bool
    public var direct: Bool
    public var num_queues: Int
    public var queue_size: UInt16
    public var vhost_user: Bool
    public var vhost_socket: String?
    public var rate_limit_group: String?
    public var rate_limiter_config: RateLimiterConfig?
    /// CH's testing switches (`_disable_io_uring`, `_disable_aio` on the CLI).
    public var disable_io_uring: Bool
    public var disable_aio: Bool
    public var serial: String?
    public var queue_affinity: [VirtQueueAffinity]?
    public var backing_files: Bool
    public var sparse: Bool
    public var image_type: ImageType
    public var lock_granularity: LockGranularity

    public static let defaultNumQueues = 1
    public static let defaultQueueSize: UInt16 = 128

    public init(path: String? = nil, readonly: Bool = false, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.path = path
        self.readonly = readonly
        direct = false
        num_queues = Self.defaultNumQueues
        queue_size = Self.defaultQueueSize
        vhost_user = false
        vhost_socket = nil
        rate_limit_group = nil
        rate_limiter_config = nil
        disable_io_uring = false
        disable_aio = false
        serial = nil
        queue_affinity = nil
        backing_files = false
        sparse = true
        image_type = .Unknown
        lock_granularity = .ByteRange
    }

    enum CodingKeys: String, CodingKey {
        case path, readonly, direct, num_queues, queue_size, vhost_user, vhost_socket, rate_limit_group
        case rate_limiter_config, disable_io_uring, disable_aio, serial, queue_affinity, backing_files, sparse
        case image_type, lock_granularity
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        readonly = try c.decode(.readonly, default: false)
        direct = try c.decode(.direct, default: false)
        num_queues = try c.decode(.num_queues, default: Self.defaultNumQueues)
        queue_size = try c.decode(.queue_size, default: Self.defaultQueueSize)
        vhost_user = try c.decode(.vhost_user, default: false)
        vhost_socket = try c.decodeIfPresent(String.self, forKey: .vhost_socket)
        rate_limit_group = try c.decodeIfPresent(String.self, forKey: .rate_limit_group)
        rate_limiter_config = try c.decodeIfPresent(RateLimiterConfig.self, forKey: .rate_limiter_config)
        disable_io_uring = try c.decode(.disable_io_uring, default: false)
        disable_aio = try c.decode(.disable_aio, default: false)
        serial = try c.decodeIfPresent(String.self, forKey: .serial)
        queue_affinity = try c.decodeIfPresent([VirtQueueAffinity].self, forKey: .queue_affinity)
        backing_files = try c.decode(.backing_files, default: false)
        sparse = try c.decode(.sparse, default: true)
        image_type = try c.decode(.image_type, default: .Unknown)
        lock_granularity = try c.decode(.lock_granularity, default: .ByteRange)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encode(readonly, forKey: .readonly)
        try c.encode(direct, forKey: .direct)
        try c.encode(num_queues, forKey: .num_queues)
        try c.encode(queue_size, forKey: .queue_size)
        try c.encode(vhost_user, forKey: .vhost_user)
        try c.encodeIfPresent(vhost_socket, forKey: .vhost_socket)
        try c.encodeIfPresent(rate_limit_group, forKey: .rate_limit_group)
        try c.encodeIfPresent(rate_limiter_config, forKey: .rate_limiter_config)
        try c.encode(disable_io_uring, forKey: .disable_io_uring)
        try c.encode(disable_aio, forKey: .disable_aio)
        try c.encodeIfPresent(serial, forKey: .serial)
        try c.encodeIfPresent(queue_affinity, forKey: .queue_affinity)
        try c.encode(backing_files, forKey: .backing_files)
        try c.encode(sparse, forKey: .sparse)
        try c.encode(image_type, forKey: .image_type)
        try c.encode(lock_granularity, forKey: .lock_granularity)
    }

    /// `--disk path=…,readonly=on,direct=on,num_queues=N,queue_size=N,vhost_user=on,socket=…,bw_*=…,ops_*=…,
    /// id=…,serial=…,rate_limit_group=…,queue_affinity=[q@[cpus]],backing_files=on,sparse=on,
    /// image_type=raw|qcow2|vhd|vhdx|vmdk,lock_granularity=byte-range|full,iommu=on,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> DiskConfig {
        let p = try OptionParser(
            flag: "--disk", input: input,
            known: ["path", "readonly", "direct", "queue_size", "num_queues", "vhost_user", "socket",
                    "_disable_io_uring", "_disable_aio", "serial", "rate_limit_group", "queue_affinity",
                    "backing_files", "sparse", "image_type", "lock_granularity"]
                + RateLimiterConfig.options + PciDeviceCommonConfig.optionsWithIOMMU)
        var d = DiskConfig(path: p.string("path"), readonly: try p.bool("readonly") ?? false)
        d.pci_common = try PciDeviceCommonConfig(parsing: p)
        d.direct = try p.bool("direct") ?? false
        d.queue_size = try p.integer("queue_size") ?? Self.defaultQueueSize
        d.num_queues = try p.integer("num_queues") ?? Self.defaultNumQueues
        d.vhost_user = try p.bool("vhost_user") ?? false
        d.vhost_socket = p.string("socket")
        d.disable_io_uring = try p.bool("_disable_io_uring") ?? false
        d.disable_aio = try p.bool("_disable_aio") ?? false
        d.rate_limit_group = p.string("rate_limit_group")
        d.rate_limiter_config = try RateLimiterConfig.parse(p)
        d.serial = p.string("serial")
        d.queue_affinity = try p.tupleList("queue_affinity", expected: "a list such as [0@[0,1],1@[2-3]]") { text in
            OptionParser.integerList(text)
        }?.map { pair in
            guard let index = UInt16(pair.0) else {
                throw OptionError.invalidValue(flag: p.flag, option: "queue_affinity", value: pair.0,
                                               expected: "a queue index")
            }
            return VirtQueueAffinity(queue_index: index, host_cpus: pair.1)
        }
        d.backing_files = try p.bool("backing_files") ?? false
        d.sparse = try p.bool("sparse") ?? true
        // CH ignores image_type for vhost-user disks: the backend owns the format.
        if d.vhost_socket == nil { d.image_type = try p.choice("image_type", ImageType.cliNames) ?? .Unknown }
        d.lock_granularity = try p.choice("lock_granularity", ["byte-range": .ByteRange, "full": .Full],
                                          caseSensitive: true) ?? .ByteRange
        return d
    }
}
