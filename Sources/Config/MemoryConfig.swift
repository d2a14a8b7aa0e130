/// How memory is added at runtime: ACPI DIMM hotplug or virtio-mem (`acpi|virtio-mem` on the CLI).
public enum HotplugMethod: String, Codable, Sendable, Equatable {
    case Acpi, VirtioMem
}

public struct MemoryConfig: Codable, Sendable, Equatable {
    public static let defaultSize: UInt64 = 512 << 20

    public var size: UInt64
    public var mergeable: Bool
    public var hotplug_method: HotplugMethod
    public var hotplug_size: UInt64?
    public var hotplugged_size: UInt64?
    public var shared: Bool
    public var hugepages: Bool
    public var hugepage_size: UInt64?
    public var prefault: Bool
    public var reserve: Bool
    public var zones: [MemoryZoneConfig]?
    public var thp: Bool

    public init(size: UInt64 = MemoryConfig.defaultSize, shared: Bool = false, hugepages: Bool = false,
                prefault: Bool = false) {
        self.size = size
        mergeable = false
        hotplug_method = .Acpi
        hotplug_size = nil
        hotplugged_size = nil
        self.shared = shared
        self.hugepages = hugepages
        hugepage_size = nil
        self.prefault = prefault
        reserve = false
        zones = nil
        thp = true
    }

    enum CodingKeys: String, CodingKey {
        case size, mergeable, hotplug_method, hotplug_size, hotplugged_size, shared, hugepages, hugepage_size
        case prefault, reserve, zones, thp
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        size = try c.decode(UInt64.self, forKey: .size)
        mergeable = try c.decode(.mergeable, default: false)
        hotplug_method = try c.decode(.hotplug_method, default: .Acpi)
        hotplug_size = try c.decodeIfPresent(UInt64.self, forKey: .hotplug_size)
        hotplugged_size = try c.decodeIfPresent(UInt64.self, forKey: .hotplugged_size)
        shared = try c.decode(.shared, default: false)
        hugepages = try c.decode(.hugepages, default: false)
        hugepage_size = try c.decodeIfPresent(UInt64.self, forKey: .hugepage_size)
        prefault = try c.decode(.prefault, default: false)
        reserve = try c.decode(.reserve, default: false)
        zones = try c.decodeIfPresent([MemoryZoneConfig].self, forKey: .zones)
        thp = try c.decode(.thp, default: true)
    }

    /// RAM the guest can have in total: the base size, the zones and what was hot-plugged.
    public var totalSize: UInt64 {
        let zoneSizes = (zones ?? []).reduce(UInt64(0)) { $0 + $1.size + ($1.hotplugged_size ?? 0) }
        return size + zoneSizes + (hotplugged_size ?? 0)
    }

    /// `--memory size=512M,mergeable=on,shared=on,hugepages=on,hugepage_size=2M,prefault=on,reserve=on,
    /// hotplug_method=acpi|virtio-mem,hotplug_size=…,hotplugged_size=…,thp=on`.
    public static func parse(_ input: String) throws -> MemoryConfig {
        let p = try OptionParser(flag: "--memory", input: input,
                                 known: ["size", "mergeable", "shared", "hugepages", "hugepage_size", "prefault",
                                         "hotplug_method", "hotplug_size", "hotplugged_size", "reserve", "thp"])
        var config = MemoryConfig(size: try p.size("size") ?? defaultSize,
                                  shared: try p.bool("shared") ?? false,
                                  hugepages: try p.bool("hugepages") ?? false,
                                  prefault: try p.bool("prefault") ?? false)
        config.mergeable = try p.bool("mergeable") ?? false
        config.hugepage_size = try p.size("hugepage_size")
        config.hotplug_size = try p.size("hotplug_size")
        config.hotplugged_size = try p.size("hotplugged_size")
        config.reserve = try p.bool("reserve") ?? false
        config.thp = try p.bool("thp") ?? true
        config.hotplug_method = try p.choice("hotplug_method", ["acpi": .Acpi, "virtio-mem": .VirtioMem]) ?? .Acpi
        return config
    }
}

/// A separately configured region of guest RAM (`--memory-zone`, `memory.zones`).
public struct MemoryZoneConfig: Codable, Sendable, Equatable {
    public var id: String
    public var size: UInt64
    public var file: String?
    public var shared: Bool
    public var hugepages: Bool
    public var hugepage_size: UInt64?
    public var host_numa_node: UInt32?
    public var hotplug_size: UInt64?
    public var hotplugged_size: UInt64?
    public var prefault: Bool
    public var reserve: Bool
    public var mergeable: Bool

    public init(id: String, size: UInt64) {
        self.id = id
        self.size = size
        file = nil
        shared = false
        hugepages = false
        hugepage_size = nil
        host_numa_node = nil
        hotplug_size = nil
        hotplugged_size = nil
        prefault = false
        reserve = false
        mergeable = false
    }

    enum CodingKeys: String, CodingKey {
        case id, size, file, shared, hugepages, hugepage_size, host_numa_node, hotplug_size, hotplugged_size
        case prefault, reserve, mergeable
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        size = try c.decode(UInt64.self, forKey: .size)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        shared = try c.decode(.shared, default: false)
        hugepages = try c.decode(.hugepages, default: false)
        hugepage_size = try c.decodeIfPresent(UInt64.self, forKey: .hugepage_size)
        host_numa_node = try c.decodeIfPresent(UInt32.self, forKey: .host_numa_node)
        hotplug_size = try c.decodeIfPresent(UInt64.self, forKey: .hotplug_size)
        hotplugged_size = try c.decodeIfPresent(UInt64.self, forKey: .hotplugged_size)
        prefault = try c.decode(.prefault, default: false)
        reserve = try c.decode(.reserve, default: false)
        mergeable = try c.decode(.mergeable, default: false)
    }

    /// `--memory-zone id=…,size=…,file=…,shared=on,hugepages=on,hugepage_size=…,host_numa_node=N,
    /// hotplug_size=…,hotplugged_size=…,prefault=on,reserve=on,mergeable=on`. `mergeable` defaults to the
    /// `--memory` setting, as in CH.
    public static func parse(_ input: String, mergeableDefault: Bool = false) throws -> MemoryZoneConfig {
        let p = try OptionParser(flag: "--memory-zone", input: input,
                                 known: ["id", "size", "file", "shared", "hugepages", "hugepage_size", "host_numa_node",
                                         "hotplug_size", "hotplugged_size", "prefault", "reserve", "mergeable"])
        var zone = MemoryZoneConfig(id: try p.requiredString("id"), size: try p.size("size") ?? MemoryConfig.defaultSize)
        zone.file = p.string("file")
        zone.shared = try p.bool("shared") ?? false
        zone.hugepages = try p.bool("hugepages") ?? false
        zone.hugepage_size = try p.size("hugepage_size")
        zone.host_numa_node = try p.integer("host_numa_node")
        zone.hotplug_size = try p.size("hotplug_size")
        zone.hotplugged_size = try p.size("hotplugged_size")
        zone.prefault = try p.bool("prefault") ?? false
        zone.reserve = try p.bool("reserve") ?? false
        zone.mergeable = try p.bool("mergeable") ?? mergeableDefault
        return zone
    }
}
