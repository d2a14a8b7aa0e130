// Request and response bodies of Cloud Hypervisor's REST API (names and JSON fields as CH), shared by the
// server, the client library and ch-remote. Restore and migration bodies are in RestoreMigrationConfigs.swift.

/// `vm.info`'s `state`.
public enum VmState: String, Sendable, Codable, Equatable {
    case Created, Running, Shutdown, Paused, BreakPoint
}

/// `vmm.ping`.
public struct VmmPingResponse: Codable, Sendable, Equatable {
    public var build_version: String
    public var version: String
    public var pid: Int64
    public var features: [String]

    public init(build_version: String, version: String, pid: Int64, features: [String]) {
        self.build_version = build_version
        self.version = version
        self.pid = pid
        self.features = features
    }
}

/// One node of `vm.info`'s `device_tree` (unset `parent`/`pci_bdf` are omitted, as CH).
public struct DeviceNode: Codable, Sendable, Equatable {
    public var id: String
    public var resources: [DeviceResource]
    public var parent: String?
    public var children: [String]
    /// `segment:bus:device.function`, e.g. `0000:00:05.0`.
    public var pci_bdf: String?

    public init(id: String, resources: [DeviceResource] = [], parent: String? = nil, children: [String] = [],
                pci_bdf: String? = nil) {
        self.id = id
        self.resources = resources
        self.parent = parent
        self.children = children
        self.pci_bdf = pci_bdf
    }
}

/// The kind of a PCI BAR in a device resource.
public enum PciBarType: String, Codable, Sendable, Equatable {
    case Io, Mmio32, Mmio64
}

/// The kind of an MSI interrupt range in a device resource.
public enum MsiIrqType: String, Codable, Sendable, Equatable {
    case PciMsi, PciMsix, GenericMsi
}

/// A resource a device uses, encoded as CH does (an externally tagged enum: `{"PioAddressRange":{"base":..,"size":..}}`).
public enum DeviceResource: Codable, Sendable, Equatable {
    case pioAddressRange(base: UInt16, size: UInt16)
    case mmioAddressRange(base: UInt64, size: UInt64)
    case pciBar(index: Int, base: UInt64, size: UInt64, type: PciBarType, prefetchable: Bool)
    case legacyIrq(UInt32)
    case msiIrq(type: MsiIrqType, base: UInt32, size: UInt32)
    case macAddress(String)
    case kvmMemSlot(UInt32)

    private enum Tag: String, CodingKey { case PioAddressRange, MmioAddressRange, PciBar, LegacyIrq, MsiIrq, MacAddress, KvmMemSlot }
    private enum Fields: String, CodingKey { case base, size, index, type_, prefetchable, ty }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Tag.self)
        switch self {
        case let .pioAddressRange(base, size):
            var r = c.nestedContainer(keyedBy: Fields.self, forKey: .PioAddressRange)
            try r.encode(base, forKey: .base); try r.encode(size, forKey: .size)
        case let .mmioAddressRange(base, size):
            var r = c.nestedContainer(keyedBy: Fields.self, forKey: .MmioAddressRange)
            try r.encode(base, forKey: .base); try r.encode(size, forKey: .size)
        case let .pciBar(index, base, size, type, prefetchable):
            var r = c.nestedContainer(keyedBy: Fields.self, forKey: .PciBar)
            try r.encode(index, forKey: .index); try r.encode(base, forKey: .base); try r.encode(size, forKey: .size)
            try r.encode(type, forKey: .type_); try r.encode(prefetchable, forKey: .prefetchable)
        case let .legacyIrq(irq):
            try c.encode(irq, forKey: .LegacyIrq)
        case let .msiIrq(type, base, size):
            var r = c.nestedContainer(keyedBy: Fields.self, forKey: .MsiIrq)
            try r.encode(type, forKey: .ty); try r.encode(base, forKey: .base); try r.encode(size, forKey: .size)
        case let .macAddress(mac):
            try c.encode(mac, forKey: .MacAddress)
        case let .kvmMemSlot(slot):
            try c.encode(slot, forKey: .KvmMemSlot)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Tag.self)
        guard c.allKeys.count == 1, let tag = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "expected exactly one resource variant"))
        }
        switch tag {
        case .PioAddressRange:
            let r = try c.nestedContainer(keyedBy: Fields.self, forKey: tag)
            self = .pioAddressRange(base: try r.decode(UInt16.self, forKey: .base), size: try r.decode(UInt16.self, forKey: .size))
        case .MmioAddressRange:
            let r = try c.nestedContainer(keyedBy: Fields.self, forKey: tag)
            self = .mmioAddressRange(base: try r.decode(UInt64.self, forKey: .base), size: try r.decode(UInt64.self, forKey: .size))
        case .PciBar:
            let r = try c.nestedContainer(keyedBy: Fields.self, forKey: tag)
            self = .pciBar(index: try r.decode(Int.self, forKey: .index), base: try r.decode(UInt64.self, forKey: .base),
                           size: try r.decode(UInt64.self, forKey: .size), type: try r.decode(PciBarType.self, forKey: .type_),
                           prefetchable: try r.decode(Bool.self, forKey: .prefetchable))
        case .LegacyIrq:
            self = .legacyIrq(try c.decode(UInt32.self, forKey: tag))
        case .MsiIrq:
            let r = try c.nestedContainer(keyedBy: Fields.self, forKey: tag)
            self = .msiIrq(type: try r.decode(MsiIrqType.self, forKey: .ty), base: try r.decode(UInt32.self, forKey: .base),
                           size: try r.decode(UInt32.self, forKey: .size))
        case .MacAddress:
            self = .macAddress(try c.decode(String.self, forKey: tag))
        case .KvmMemSlot:
            self = .kvmMemSlot(try c.decode(UInt32.self, forKey: tag))
        }
    }
}

/// `vm.info` (CH's VmInfoResponse; an unset `device_tree` is omitted).
public struct VmInfo: Codable, Sendable, Equatable {
    public var config: VmConfig
    public var state: VmState
    public var memory_actual_size: UInt64?
    public var device_tree: [String: DeviceNode]?

    public init(config: VmConfig, state: VmState, memory_actual_size: UInt64?, device_tree: [String: DeviceNode]?) {
        self.config = config
        self.state = state
        self.memory_actual_size = memory_actual_size
        self.device_tree = device_tree
    }
}

/// `vm.counters`: device id → counter name → value.
public typealias VmCounters = [String: [String: UInt64]]

/// Answer of a hot-plug (`vm.add-*`) on a running VM.
public struct PciDeviceInfo: Codable, Sendable, Equatable {
    public var id: String
    /// `segment:bus:device.function`, e.g. `0000:00:05.0`.
    public var bdf: String
    public init(id: String, bdf: String) { self.id = id; self.bdf = bdf }
}

/// `vm.snapshot` body.
public struct VmSnapshotConfig: Codable, Sendable, Equatable {
    public var destination_url: String
    /// Beyond CH: `false` skips O_DIRECT and every fsync, so the snapshot may still be in the page cache when
    /// the VMM answers (as QEMU's `migrate "exec:… > FILE"`): faster when the disk is the bottleneck, lost in a
    /// host crash. Absent or `true` (the default): acknowledged snapshots survive a host crash.
    public var durable: Bool?

    public init(destination_url: String, durable: Bool? = nil) {
        self.destination_url = destination_url
        self.durable = durable
    }
}

/// `vm.coredump` body.
public struct VmCoredumpData: Codable, Sendable, Equatable {
    public var destination_url: String
    public init(destination_url: String) { self.destination_url = destination_url }
}

/// `vm.resize` body. Unset fields are sent as `null`, as CH's serde writes them.
public struct VmResize: Codable, Sendable, Equatable {
    public var desired_vcpus: UInt32?
    public var desired_ram: UInt64?
    public var desired_balloon: UInt64?

    public init(desired_vcpus: UInt32? = nil, desired_ram: UInt64? = nil, desired_balloon: UInt64? = nil) {
        self.desired_vcpus = desired_vcpus
        self.desired_ram = desired_ram
        self.desired_balloon = desired_balloon
    }

    enum CodingKeys: String, CodingKey { case desired_vcpus, desired_ram, desired_balloon }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNullable(desired_vcpus, forKey: .desired_vcpus)
        try c.encodeNullable(desired_ram, forKey: .desired_ram)
        try c.encodeNullable(desired_balloon, forKey: .desired_balloon)
    }
}

/// `vm.resize-zone` body.
public struct VmResizeZone: Codable, Sendable, Equatable {
    public var id: String
    public var desired_ram: UInt64
    public init(id: String, desired_ram: UInt64) { self.id = id; self.desired_ram = desired_ram }
}

/// `vm.resize-disk` body.
public struct VmResizeDisk: Codable, Sendable, Equatable {
    public var id: String
    public var desired_size: UInt64
    public init(id: String, desired_size: UInt64) { self.id = id; self.desired_size = desired_size }
}

/// `vm.remove-device` body.
public struct VmRemoveDevice: Codable, Sendable, Equatable {
    public var id: String
    public init(id: String) { self.id = id }
}
