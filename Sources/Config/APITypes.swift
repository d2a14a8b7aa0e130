/// Request and response bodies of Cloud Hypervisor's REST API (names and JSON fields as CH).
/// Shared by the server, the client library and ch-remote.

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

/// One node of `vm.info`'s `device_tree`.
public struct DeviceNode: Codable, Sendable, Equatable {
    public var id: String
    public var resources: [DeviceResource]
    public var children: [String]
    public var pci_bdf: String?

    public init(id: String, resources: [DeviceResource] = [], children: [String] = [], pci_bdf: String? = nil) {
        self.id = id
        self.resources = resources
        self.children = children
        self.pci_bdf = pci_bdf
    }
}

/// A resource a device uses, encoded as CH does (an externally tagged enum: `{"PioAddressRange":{"base":..,"size":..}}`).
public enum DeviceResource: Codable, Sendable, Equatable {
    case pioAddressRange(base: UInt16, size: UInt16)
    case mmioAddressRange(base: UInt64, size: UInt64)
    case legacyIrq(UInt32)

    private enum Tag: String, CodingKey { case PioAddressRange, MmioAddressRange, LegacyIrq }
    private enum Range: String, CodingKey { case base, size }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Tag.self)
        switch self {
        case let .pioAddressRange(base, size):
            var r = c.nestedContainer(keyedBy: Range.self, forKey: .PioAddressRange)
            try r.encode(base, forKey: .base); try r.encode(size, forKey: .size)
        case let .mmioAddressRange(base, size):
            var r = c.nestedContainer(keyedBy: Range.self, forKey: .MmioAddressRange)
            try r.encode(base, forKey: .base); try r.encode(size, forKey: .size)
        case let .legacyIrq(irq):
            try c.encode(irq, forKey: .LegacyIrq)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Tag.self)
        if let r = try? c.nestedContainer(keyedBy: Range.self, forKey: .PioAddressRange) {
            self = .pioAddressRange(base: try r.decode(UInt16.self, forKey: .base), size: try r.decode(UInt16.self, forKey: .size))
        } else if let r = try? c.nestedContainer(keyedBy: Range.self, forKey: .MmioAddressRange) {
            self = .mmioAddressRange(base: try r.decode(UInt64.self, forKey: .base), size: try r.decode(UInt64.self, forKey: .size))
        } else {
            self = .legacyIrq(try c.decode(UInt32.self, forKey: .LegacyIrq))
        }
    }
}

/// `vm.info`.
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
    public var bdf: String
    public init(id: String, bdf: String) { self.id = id; self.bdf = bdf }
}

/// `vm.snapshot` body.
public struct VmSnapshotConfig: Codable, Sendable, Equatable {
    public var destination_url: String
    public init(destination_url: String) { self.destination_url = destination_url }
}

/// `vm.coredump` body.
public struct VmCoredumpData: Codable, Sendable, Equatable {
    public var destination_url: String
    public init(destination_url: String) { self.destination_url = destination_url }
}

/// `vm.restore` body and `--restore` (CH's RestoreConfig).
public struct RestoreConfig: Codable, Sendable, Equatable {
    public var source_url: String
    public var prefault: Bool
    public var resume: Bool
    public var memory_restore_mode: String?

    public init(source_url: String, prefault: Bool = false, resume: Bool = false, memory_restore_mode: String? = nil) {
        self.source_url = source_url
        self.prefault = prefault
        self.resume = resume
        self.memory_restore_mode = memory_restore_mode
    }

    enum CodingKeys: String, CodingKey { case source_url, prefault, resume, memory_restore_mode }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source_url = try c.decode(String.self, forKey: .source_url)
        prefault = try c.decodeIfPresent(Bool.self, forKey: .prefault) ?? false
        resume = try c.decodeIfPresent(Bool.self, forKey: .resume) ?? false
        memory_restore_mode = try c.decodeIfPresent(String.self, forKey: .memory_restore_mode)
    }
}

/// `vm.receive-migration` body.
public struct ReceiveMigrationData: Codable, Sendable, Equatable {
    public var receiver_url: String
    public init(receiver_url: String) { self.receiver_url = receiver_url }
}

/// `vm.send-migration` body (CH's SendMigrationData with its defaults).
public struct SendMigrationData: Codable, Sendable, Equatable {
    public var destination_url: String
    public var local: Bool
    public var downtime_ms: UInt64
    public var timeout_s: UInt64
    public var timeout_strategy: String

    public init(destination_url: String, local: Bool = false, downtime_ms: UInt64 = 300, timeout_s: UInt64 = 3600,
                timeout_strategy: String = "Cancel") {
        self.destination_url = destination_url
        self.local = local
        self.downtime_ms = downtime_ms
        self.timeout_s = timeout_s
        self.timeout_strategy = timeout_strategy
    }

    enum CodingKeys: String, CodingKey { case destination_url, local, downtime_ms, timeout_s, timeout_strategy }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        destination_url = try c.decode(String.self, forKey: .destination_url)
        local = try c.decodeIfPresent(Bool.self, forKey: .local) ?? false
        downtime_ms = try c.decodeIfPresent(UInt64.self, forKey: .downtime_ms) ?? 300
        timeout_s = try c.decodeIfPresent(UInt64.self, forKey: .timeout_s) ?? 3600
        timeout_strategy = try c.decodeIfPresent(String.self, forKey: .timeout_strategy) ?? "Cancel"
    }
}

/// `vm.resize` body.
public struct VmResize: Codable, Sendable, Equatable {
    public var desired_vcpus: UInt32?
    public var desired_ram: Int64?
    public var desired_balloon: Int64?
    public init(desired_vcpus: UInt32? = nil, desired_ram: Int64? = nil, desired_balloon: Int64? = nil) {
        self.desired_vcpus = desired_vcpus
        self.desired_ram = desired_ram
        self.desired_balloon = desired_balloon
    }
}

/// `vm.resize-zone` body.
public struct VmResizeZone: Codable, Sendable, Equatable {
    public var id: String
    public var desired_ram: Int64
    public init(id: String, desired_ram: Int64) { self.id = id; self.desired_ram = desired_ram }
}

/// `vm.resize-disk` body.
public struct VmResizeDisk: Codable, Sendable, Equatable {
    public var id: String
    public var desired_size: Int64
    public init(id: String, desired_size: Int64) { self.id = id; self.desired_size = desired_size }
}

/// `vm.remove-device` body.
public struct VmRemoveDevice: Codable, Sendable, Equatable {
    public var id: String
    public init(id: String) { self.id = id }
}
