// virtio-fs, virtio-pmem, virtio-vsock and vDPA device configurations (CH's FsConfig, PmemConfig, VsockConfig,
// VdpaConfig): JSON as CH (common PCI fields flattened in), CLI parsers for `--fs`, `--pmem`, `--vsock`,
// `--vdpa` and `ch-remote add-*`.

/// A virtio-fs share served by a vhost-user daemon (virtiofsd) on `socket`.
public struct FsConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var tag: String
    public var socket: String
    public var num_queues: Int
    public var queue_size: UInt16

    /// The virtio-fs config space holds at most this many tag bytes.
    public static let maxTagLength = 36

    public init(tag: String, socket: String, num_queues: Int = 1, queue_size: UInt16 = 1024, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.tag = tag
        self.socket = socket
        self.num_queues = num_queues
        self.queue_size = queue_size
    }

    enum CodingKeys: String, CodingKey { case tag, socket, num_queues, queue_size }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        tag = try c.decode(String.self, forKey: .tag)
        socket = try c.decode(String.self, forKey: .socket)
        num_queues = try c.decode(.num_queues, default: 1)
        queue_size = try c.decode(.queue_size, default: 1024)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(tag, forKey: .tag)
        try c.encode(socket, forKey: .socket)
        try c.encode(num_queues, forKey: .num_queues)
        try c.encode(queue_size, forKey: .queue_size)
    }

    /// `--fs tag=…,socket=…,num_queues=N,queue_size=N,id=…,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> FsConfig {
        let p = try OptionParser(flag: "--fs", input: input,
                                 known: ["tag", "queue_size", "num_queues", "socket"] + PciDeviceCommonConfig.options)
        let tag = try p.requiredString("tag")
        guard tag.utf8.count <= maxTagLength else {
            throw OptionError.invalidValue(flag: p.flag, option: "tag", value: tag,
                                           expected: "at most \(maxTagLength) bytes")
        }
        var fs = FsConfig(tag: tag, socket: try p.requiredString("socket"),
                          num_queues: try p.integer("num_queues") ?? 1, queue_size: try p.integer("queue_size") ?? 1024)
        fs.pci_common = try PciDeviceCommonConfig(parsing: p)
        return fs
    }
}

/// A virtio-pmem device backed by `file` (its size when `size` is nil).
public struct PmemConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var file: String
    public var size: UInt64?
    public var discard_writes: Bool

    public init(file: String, size: UInt64? = nil, discard_writes: Bool = false, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.file = file
        self.size = size
        self.discard_writes = discard_writes
    }

    enum CodingKeys: String, CodingKey { case file, size, discard_writes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        file = try c.decode(String.self, forKey: .file)
        size = try c.decodeIfPresent(UInt64.self, forKey: .size)
        discard_writes = try c.decode(.discard_writes, default: false)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(file, forKey: .file)
        try c.encodeIfPresent(size, forKey: .size)
        try c.encode(discard_writes, forKey: .discard_writes)
    }

    /// `--pmem file=…,size=…,discard_writes=on,iommu=on,id=…,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> PmemConfig {
        let p = try OptionParser(flag: "--pmem", input: input,
                                 known: ["size", "file", "discard_writes"] + PciDeviceCommonConfig.optionsWithIOMMU)
        var pmem = PmemConfig(file: try p.requiredString("file"), size: try p.size("size"),
                              discard_writes: try p.bool("discard_writes") ?? false)
        pmem.pci_common = try PciDeviceCommonConfig(parsing: p)
        return pmem
    }
}

/// A virtio-vsock device: guest context id `cid`, host side as a UNIX socket at `socket`.
public struct VsockConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var cid: UInt32
    public var socket: String

    public init(cid: UInt32, socket: String, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.cid = cid
        self.socket = socket
    }

    enum CodingKeys: String, CodingKey { case cid, socket }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        cid = try c.decode(UInt32.self, forKey: .cid)
        socket = try c.decode(String.self, forKey: .socket)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cid, forKey: .cid)
        try c.encode(socket, forKey: .socket)
    }

    /// `--vsock cid=N,socket=…,iommu=on,id=…,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> VsockConfig {
        let p = try OptionParser(flag: "--vsock", input: input,
                                 known: ["socket", "cid"] + PciDeviceCommonConfig.optionsWithIOMMU)
        var vsock = VsockConfig(cid: try p.required("cid", p.integer("cid")), socket: try p.requiredString("socket"))
        vsock.pci_common = try PciDeviceCommonConfig(parsing: p)
        return vsock
    }
}

/// A vDPA device (`/dev/vhost-vdpa-N`).
public struct VdpaConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var path: String
    public var num_queues: Int

    public init(path: String, num_queues: Int = 1, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.path = path
        self.num_queues = num_queues
    }

    enum CodingKeys: String, CodingKey { case path, num_queues }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        path = try c.decode(String.self, forKey: .path)
        num_queues = try c.decode(.num_queues, default: 1)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(num_queues, forKey: .num_queues)
    }

    /// `--vdpa path=…,num_queues=N,iommu=on,id=…,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> VdpaConfig {
        let p = try OptionParser(flag: "--vdpa", input: input,
                                 known: ["path", "num_queues"] + PciDeviceCommonConfig.optionsWithIOMMU)
        var vdpa = VdpaConfig(path: try p.requiredString("path"), num_queues: try p.integer("num_queues") ?? 1)
        vdpa.pci_common = try PciDeviceCommonConfig(parsing: p)
        return vdpa
    }
}
