// Bodies of `vm.restore`, `vm.send-migration` and `vm.receive-migration` (CH's RestoreConfig,
// VmSendMigrationData, VmReceiveMigrationData) with their option-string parsers (`--restore`,
// `ch-remote restore|send-migration|receive-migration`). CH writes these without `skip_serializing_none`:
// unset optional fields go out as `null`.

/// How a restore brings snapshot memory back: copy it all first, or fault pages in on demand (userfaultfd).
public enum MemoryRestoreMode: String, Codable, Sendable, Equatable {
    case Copy, OnDemand
}

/// New tap descriptors for a restored net device (`net_fds=[net0@[3,4]]`); the descriptors themselves travel
/// as SCM_RIGHTS, so from JSON each decodes as -1 and only their count is meaningful.
public struct RestoredNetConfig: Codable, Sendable, Equatable {
    public var id: String
    public var num_fds: Int
    public var fds: [Int32]?

    public init(id: String, fds: [Int32]?) {
        self.id = id
        self.num_fds = fds?.count ?? 0
        self.fds = fds
    }

    enum CodingKeys: String, CodingKey { case id, num_fds, fds }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        num_fds = try c.decode(.num_fds, default: 0)
        fds = try c.decodeStaleFDs(.fds)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(num_fds, forKey: .num_fds)
        try c.encodeNullable(fds, forKey: .fds)
    }
}

/// A new VFIO cdev descriptor for a restored or migrated device (`vfio_fds=[vfio0@5]`).
public struct RestoredVfioConfig: Codable, Sendable, Equatable {
    public var id: String
    public var fd: Int32?

    public init(id: String, fd: Int32?) { self.id = id; self.fd = fd }

    enum CodingKeys: String, CodingKey { case id, fd }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        fd = try c.decodeStaleFD(.fd)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encodeNullable(fd, forKey: .fd)
    }
}

/// Moves a memory zone to another host NUMA node on restore or migration (`zone_updates=[mem0@1]`).
public struct VmMemoryZoneUpdateData: Codable, Sendable, Equatable {
    public var id: String
    public var host_numa_node: UInt32
    public init(id: String, host_numa_node: UInt32) { self.id = id; self.host_numa_node = host_numa_node }
}

/// `vm.restore` body and `--restore`.
public struct RestoreConfig: Codable, Sendable, Equatable {
    public var source_url: String
    public var prefault: Bool
    public var memory_restore_mode: MemoryRestoreMode
    public var net_fds: [RestoredNetConfig]?
    public var vfio_fds: [RestoredVfioConfig]?
    public var iommufd_fd: Int32?
    public var resume: Bool
    public var zone_updates: [VmMemoryZoneUpdateData]

    public init(source_url: String, prefault: Bool = false, resume: Bool = false,
                memory_restore_mode: MemoryRestoreMode = .Copy) {
        self.source_url = source_url
        self.prefault = prefault
        self.memory_restore_mode = memory_restore_mode
        net_fds = nil
        vfio_fds = nil
        iommufd_fd = nil
        self.resume = resume
        zone_updates = []
    }

    enum CodingKeys: String, CodingKey {
        case source_url, prefault, memory_restore_mode, net_fds, vfio_fds, iommufd_fd, resume, zone_updates
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source_url = try c.decode(String.self, forKey: .source_url)
        prefault = try c.decode(.prefault, default: false)
        memory_restore_mode = try c.decode(.memory_restore_mode, default: .Copy)
        net_fds = try c.decodeIfPresent([RestoredNetConfig].self, forKey: .net_fds)
        vfio_fds = try c.decodeIfPresent([RestoredVfioConfig].self, forKey: .vfio_fds)
        iommufd_fd = try c.decodeStaleFD(.iommufd_fd)
        resume = try c.decode(.resume, default: false)
        zone_updates = try c.decode(.zone_updates, default: [])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source_url, forKey: .source_url)
        try c.encode(prefault, forKey: .prefault)
        try c.encode(memory_restore_mode, forKey: .memory_restore_mode)
        try c.encodeNullable(net_fds, forKey: .net_fds)
        try c.encodeNullable(vfio_fds, forKey: .vfio_fds)
        try c.encodeNullable(iommufd_fd, forKey: .iommufd_fd)
        try c.encode(resume, forKey: .resume)
        try c.encode(zone_updates, forKey: .zone_updates)
    }

    /// `source_url=file:///dir,prefault=on,memory_restore_mode=copy|ondemand,net_fds=[id@[fds]],
    /// vfio_fds=[id@fd],iommufd_fd=N,resume=true,zone_updates=[id@node]`.
    public static func parse(_ input: String) throws -> RestoreConfig {
        let p = try OptionParser(flag: "--restore", input: input,
                                 known: ["source_url", "prefault", "memory_restore_mode", "net_fds", "vfio_fds",
                                         "iommufd_fd", "resume", "zone_updates"])
        var config = RestoreConfig(source_url: try p.requiredString("source_url"),
                                   prefault: try p.bool("prefault") ?? false, resume: try p.bool("resume") ?? false,
                                   memory_restore_mode: try p.choice("memory_restore_mode",
                                                                     ["copy": .Copy, "ondemand": .OnDemand]) ?? .Copy)
        config.net_fds = try p.tupleList("net_fds", expected: "a list such as [net0@[3,4]]") {
            OptionParser.integerList($0)?.compactMap { Int32(exactly: $0) }
        }?.map { RestoredNetConfig(id: $0.0, fds: $0.1) }
        config.vfio_fds = try p.vfioFDs()
        config.iommufd_fd = try p.integer("iommufd_fd")
        config.zone_updates = try p.zoneUpdates()
        return config
    }
}

/// What a migration does when it cannot reach the downtime target before `timeout_s`.
public enum TimeoutStrategy: String, Codable, Sendable, Equatable {
    case Cancel, Ignore
}

/// Whether the destination resumes after all memory arrived (precopy) or first (postcopy).
public enum MigrationMode: String, Codable, Sendable, Equatable {
    case Precopy, Postcopy
}

/// `vm.receive-migration` body.
public struct ReceiveMigrationData: Codable, Sendable, Equatable {
    public var receiver_url: String
    public var tls_dir: String?
    public var memory_mode: MigrationMode
    public var vfio_fds: [RestoredVfioConfig]?
    public var iommufd_fd: Int32?
    public var zone_updates: [VmMemoryZoneUpdateData]

    public init(receiver_url: String, memory_mode: MigrationMode = .Precopy) {
        self.receiver_url = receiver_url
        tls_dir = nil
        self.memory_mode = memory_mode
        vfio_fds = nil
        iommufd_fd = nil
        zone_updates = []
    }

    enum CodingKeys: String, CodingKey { case receiver_url, tls_dir, memory_mode, vfio_fds, iommufd_fd, zone_updates }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        receiver_url = try c.decode(String.self, forKey: .receiver_url)
        tls_dir = try c.decodeIfPresent(String.self, forKey: .tls_dir)
        memory_mode = try c.decode(.memory_mode, default: .Precopy)
        vfio_fds = try c.decodeIfPresent([RestoredVfioConfig].self, forKey: .vfio_fds)
        iommufd_fd = try c.decodeStaleFD(.iommufd_fd)
        zone_updates = try c.decode(.zone_updates, default: [])
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(receiver_url, forKey: .receiver_url)
        try c.encodeNullable(tls_dir, forKey: .tls_dir)
        try c.encode(memory_mode, forKey: .memory_mode)
        try c.encodeNullable(vfio_fds, forKey: .vfio_fds)
        try c.encodeNullable(iommufd_fd, forKey: .iommufd_fd)
        try c.encode(zone_updates, forKey: .zone_updates)
    }

    /// `receiver_url=unix:/path|tcp:host:port[,tls_dir=…,memory_mode=precopy|postcopy,vfio_fds=[id@fd],
    /// iommufd_fd=N,zone_updates=[id@node]]`; a bare URL means `receiver_url=`.
    public static func parse(_ input: String) throws -> ReceiveMigrationData {
        let p = try OptionParser(flag: "receive-migration", input: input,
                                 known: ["receiver_url", "tls_dir", "memory_mode", "vfio_fds", "iommufd_fd", "zone_updates"],
                                 bareKey: "receiver_url")
        var data = ReceiveMigrationData(receiver_url: try p.migrationURL("receiver_url"),
                                        memory_mode: try p.migrationMode() ?? .Precopy)
        data.tls_dir = p.string("tls_dir")
        data.vfio_fds = try p.vfioFDs()
        data.iommufd_fd = try p.integer("iommufd_fd")
        data.zone_updates = try p.zoneUpdates()
        if data.receiver_url.hasPrefix("unix:") && data.tls_dir != nil {
            throw OptionError.syntax(flag: p.flag, input: input, detail: "UNIX sockets and TLS cannot be used together")
        }
        return data
    }
}

/// How `vm.send-migration` sends guest pages (ours; CH has no such option).
public enum MigrationCompression: String, Codable, Sendable, Equatable, CaseIterable {
    /// Pages as they are: the byte stream of a CH-style migration.
    case none
    /// zstd on the source's worker threads; pays off when the link, not the CPU, is the limit.
    case zstd
}

/// `vm.send-migration` body (CH's VmSendMigrationData with its defaults).
public struct SendMigrationData: Codable, Sendable, Equatable {
    public var destination_url: String
    public var local: Bool
    public var preserve_source: Bool
    public var downtime_ms: UInt64
    public var timeout_s: UInt64
    public var timeout_strategy: TimeoutStrategy
    public var connections: UInt32
    public var tls_dir: String?
    public var memory_mode: MigrationMode
    /// Beyond CH (QEMU's auto-converge): throttle the vCPUs when the guest dirties memory faster than the
    /// link carries it. On unless a request turns it off, so CH clients, which never send it, get it.
    public var auto_converge: Bool
    /// Beyond CH: compress guest pages on the wire (`none` unless asked for; the destination learns it from
    /// the stream). `compression_level` is zstd's level (default 1), only with `zstd`.
    public var compression: MigrationCompression
    public var compression_level: Int32?

    public static let defaultDowntimeMs: UInt64 = 300
    public static let defaultTimeoutS: UInt64 = 3600
    public static let maxConnections: UInt32 = 128

    public init(destination_url: String, local: Bool = false, downtime_ms: UInt64 = SendMigrationData.defaultDowntimeMs,
                timeout_s: UInt64 = SendMigrationData.defaultTimeoutS, timeout_strategy: TimeoutStrategy = .Cancel) {
        self.destination_url = destination_url
        self.local = local
        preserve_source = false
        self.downtime_ms = downtime_ms
        self.timeout_s = timeout_s
        self.timeout_strategy = timeout_strategy
        connections = 1
        tls_dir = nil
        memory_mode = .Precopy
        auto_converge = true
        compression = .none
        compression_level = nil
    }

    enum CodingKeys: String, CodingKey {
        case destination_url, local, preserve_source, downtime_ms, timeout_s, timeout_strategy, connections, tls_dir
        case memory_mode, auto_converge, compression, compression_level
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        destination_url = try c.decode(String.self, forKey: .destination_url)
        local = try c.decode(.local, default: false)
        preserve_source = try c.decode(.preserve_source, default: false)
        downtime_ms = try c.decode(.downtime_ms, default: Self.defaultDowntimeMs)
        timeout_s = try c.decode(.timeout_s, default: Self.defaultTimeoutS)
        timeout_strategy = try c.decode(.timeout_strategy, default: .Cancel)
        connections = try c.decode(.connections, default: 1)
        tls_dir = try c.decodeIfPresent(String.self, forKey: .tls_dir)
        memory_mode = try c.decode(.memory_mode, default: .Precopy)
        auto_converge = try c.decode(.auto_converge, default: true)
        let compressionName = try c.decode(.compression, default: MigrationCompression.none.rawValue)
        guard let compression = MigrationCompression(rawValue: compressionName) else {
            throw DecodingError.dataCorruptedError(forKey: .compression, in: c,
                debugDescription: "unknown compression '\(compressionName)': expected \(MigrationCompression.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or "))")
        }
        self.compression = compression
        compression_level = try c.decodeIfPresent(Int32.self, forKey: .compression_level)
        // CH types these as NonZero: zero is a decoding error there too.
        for (key, value) in [(CodingKeys.downtime_ms, downtime_ms), (.timeout_s, timeout_s), (.connections, UInt64(connections))]
        where value == 0 {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "invalid value: integer `0`, expected a nonzero u64")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(destination_url, forKey: .destination_url)
        try c.encode(local, forKey: .local)
        try c.encode(preserve_source, forKey: .preserve_source)
        try c.encode(downtime_ms, forKey: .downtime_ms)
        try c.encode(timeout_s, forKey: .timeout_s)
        try c.encode(timeout_strategy, forKey: .timeout_strategy)
        try c.encode(connections, forKey: .connections)
        try c.encodeNullable(tls_dir, forKey: .tls_dir)
        try c.encode(memory_mode, forKey: .memory_mode)
        // Only when off: the default body stays exactly CH's.
        if !auto_converge { try c.encode(auto_converge, forKey: .auto_converge) }
        if compression != .none { try c.encode(compression, forKey: .compression) }
        try c.encodeIfPresent(compression_level, forKey: .compression_level)
    }

    /// `destination_url=unix:/path|tcp:host:port[,local=on,preserve_source=on,downtime_ms=N,timeout_s=N,
    /// timeout_strategy=cancel|ignore,connections=N,tls_dir=…,memory_mode=precopy|postcopy,auto_converge=on|off,
    /// compression=none|zstd,compression_level=N]`;
    /// a bare URL means `destination_url=` (the syntax of CH before v52). Combinations CH rejects are rejected
    /// here too.
    public static func parse(_ input: String) throws -> SendMigrationData {
        let p = try OptionParser(flag: "send-migration", input: input,
                                 known: ["destination_url", "local", "preserve_source", "downtime_ms", "timeout_s",
                                         "timeout_strategy", "connections", "tls_dir", "memory_mode", "auto_converge",
                                         "compression", "compression_level"],
                                 bareKey: "destination_url")
        var data = SendMigrationData(destination_url: try p.migrationURL("destination_url"),
                                     local: try p.bool("local") ?? false,
                                     downtime_ms: try p.nonZero("downtime_ms") ?? defaultDowntimeMs,
                                     timeout_s: try p.nonZero("timeout_s") ?? defaultTimeoutS,
                                     timeout_strategy: try p.choice("timeout_strategy", ["cancel": .Cancel, "ignore": .Ignore]) ?? .Cancel)
        data.preserve_source = try p.bool("preserve_source") ?? false
        data.connections = try p.nonZero("connections") ?? 1
        data.tls_dir = p.string("tls_dir")
        data.memory_mode = try p.migrationMode() ?? .Precopy
        data.auto_converge = try p.bool("auto_converge") ?? true
        data.compression = try p.choice("compression", ["none": .none, "zstd": .zstd]) ?? .none
        data.compression_level = try p.integer("compression_level")
        if let problem = data.conflict {
            throw OptionError.syntax(flag: p.flag, input: input, detail: problem)
        }
        return data
    }

    /// The first option combination CH refuses, in its words.
    var conflict: String? {
        let unix = destination_url.hasPrefix("unix:")
        if connections > Self.maxConnections { return "connections must not exceed \(Self.maxConnections)" }
        if unix && connections > 1 { return "UNIX sockets and the connections option cannot be used together" }
        if unix && tls_dir != nil { return "UNIX sockets and TLS cannot be used together" }
        if local && !unix { return "local is only supported with UNIX sockets" }
        if preserve_source && !local { return "preserve_source is only supported with local" }
        if memory_mode == .Postcopy && local { return "memory_mode=postcopy and local are mutually exclusive" }
        if memory_mode == .Postcopy && connections > 1 { return "memory_mode=postcopy requires connections=1" }
        return compressionConflict
    }

    /// Why the compression options cannot be used as given (the API answers 400 with it, the CLI refuses it).
    public var compressionConflict: String? {
        if local && compression != .none {
            return "compression is not supported with local: a local migration hands the RAM over without copying it"
        }
        if compression_level != nil && compression == .none { return "compression_level needs compression=zstd" }
        return nil
    }
}

extension OptionParser {
    /// A migration endpoint: `unix:<path>` or `tcp:<host>:<port>`.
    fileprivate func migrationURL(_ key: String) throws -> String {
        let url = try requiredString(key)
        let valid: Bool
        if let path = url.stripping("unix:") {
            valid = !path.isEmpty
        } else if let address = url.stripping("tcp:"), let colon = address.lastIndex(of: ":") {
            valid = !address[..<colon].isEmpty && UInt16(address[address.index(after: colon)...]) != nil
        } else {
            valid = false
        }
        guard valid else {
            throw OptionError.invalidValue(flag: flag, option: key, value: url, expected: "tcp:<host>:<port> or unix:<path>")
        }
        return url
    }

    fileprivate func migrationMode() throws -> MigrationMode? {
        try choice("memory_mode", ["precopy": .Precopy, "postcopy": .Postcopy])
    }

    fileprivate func nonZero<T: FixedWidthInteger>(_ key: String) throws -> T? {
        guard let n: T = try integer(key) else { return nil }
        guard n != 0 else { throw OptionError.invalidValue(flag: flag, option: key, value: "0", expected: "a non-zero integer") }
        return n
    }

    fileprivate func vfioFDs() throws -> [RestoredVfioConfig]? {
        try tupleList("vfio_fds", expected: "a list such as [vfio0@5]") { Int32($0) }?
            .map { RestoredVfioConfig(id: $0.0, fd: $0.1) }
    }

    fileprivate func zoneUpdates() throws -> [VmMemoryZoneUpdateData] {
        try tupleList("zone_updates", expected: "a list such as [mem0@1]") { UInt32($0) }?
            .map { VmMemoryZoneUpdateData(id: $0.0, host_numa_node: $0.1) } ?? []
    }
}

extension String {
    fileprivate func stripping(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
