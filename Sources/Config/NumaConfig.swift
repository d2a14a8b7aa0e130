/// Distance from one guest NUMA node to another (`distances=[1@20]`).
public struct NumaDistance: Codable, Sendable, Equatable {
    public var destination: UInt32
    public var distance: UInt8

    public init(destination: UInt32, distance: UInt8) {
        self.destination = destination
        self.distance = distance
    }

    enum CodingKeys: String, CodingKey { case destination, distance }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        destination = try c.decode(.destination, default: 0)
        distance = try c.decode(.distance, default: 0)
    }
}

/// One guest NUMA node (CH's NumaConfig): its vCPUs, memory zones and PCI segments, or a generic initiator
/// bound to a device.
public struct NumaConfig: Codable, Sendable, Equatable {
    public var guest_numa_id: UInt32
    public var cpus: [UInt32]?
    public var distances: [NumaDistance]?
    public var memory_zones: [String]?
    public var pci_segments: [UInt16]?
    public var device_id: String?

    public init(guest_numa_id: UInt32, cpus: [UInt32]? = nil, distances: [NumaDistance]? = nil,
                memory_zones: [String]? = nil, pci_segments: [UInt16]? = nil, device_id: String? = nil) {
        self.guest_numa_id = guest_numa_id
        self.cpus = cpus
        self.distances = distances
        self.memory_zones = memory_zones
        self.pci_segments = pci_segments
        self.device_id = device_id
    }

    /// `--numa guest_numa_id=N,cpus=[…],distances=[dest@dist,…],memory_zones=[…],pci_segments=[…],device_id=…`.
    public static func parse(_ input: String) throws -> NumaConfig {
        let p = try OptionParser(flag: "--numa", input: input,
                                 known: ["guest_numa_id", "cpus", "distances", "device_id", "memory_zones", "pci_segments"])
        let distances = try p.tupleList("distances", expected: "a list such as [1@20,2@30]") { UInt8($0) }?
            .map { pair in
                guard let destination = UInt32(pair.0) else {
                    throw OptionError.invalidValue(flag: p.flag, option: "distances", value: pair.0,
                                                   expected: "a NUMA node id")
                }
                return NumaDistance(destination: destination, distance: pair.1)
            }
        let config = NumaConfig(guest_numa_id: try p.required("guest_numa_id", p.integer("guest_numa_id")),
                                cpus: try p.integers("cpus"), distances: distances,
                                memory_zones: try p.stringList("memory_zones"),
                                pci_segments: try p.integers("pci_segments"), device_id: p.string("device_id"))
        // A generic initiator (device_id) has no CPUs or memory of its own.
        if config.device_id != nil && (config.cpus != nil || config.memory_zones != nil) {
            throw OptionError.invalidValue(flag: p.flag, option: "device_id", value: config.device_id ?? "",
                                           expected: "no cpus or memory_zones alongside device_id")
        }
        return config
    }
}
