/// Guest CPU topology; the product of the four parts must equal `max_vcpus`.
public struct CpuTopology: Codable, Sendable, Equatable {
    public var threads_per_core: UInt16
    public var cores_per_die: UInt16
    public var dies_per_package: UInt16
    public var packages: UInt16

    public init(threads_per_core: UInt16, cores_per_die: UInt16, dies_per_package: UInt16, packages: UInt16) {
        self.threads_per_core = threads_per_core
        self.cores_per_die = cores_per_die
        self.dies_per_package = dies_per_package
        self.packages = packages
    }
}

/// Pins one vCPU thread to host CPUs (`affinity=[0@[0,2],1@[1]]`).
public struct CpuAffinity: Codable, Sendable, Equatable {
    public var vcpu: UInt32
    public var host_cpus: [Int]

    public init(vcpu: UInt32, host_cpus: [Int]) {
        self.vcpu = vcpu
        self.host_cpus = host_cpus
    }
}

/// Optional CPU features exposed to the guest (x86_64: AMX).
public struct CpuFeatures: Codable, Sendable, Equatable {
    public var amx: Bool

    public init(amx: Bool = false) { self.amx = amx }

    public init(from decoder: any Decoder) throws {
        amx = try decoder.container(keyedBy: CodingKeys.self).decode(.amx, default: false)
    }
}

/// Which vCPUs may share a physical core under Linux core scheduling.
public enum CoreScheduling: String, Codable, Sendable, Equatable {
    case Vm, Vcpu, Off
}

/// The CPU model exposed for migration compatibility; CH offers only the host's.
public enum CpuProfile: String, Codable, Sendable, Equatable {
    case Host
}

public struct CpusConfig: Codable, Sendable, Equatable {
    public var boot_vcpus: UInt32
    public var max_vcpus: UInt32
    public var topology: CpuTopology?
    public var kvm_hyperv: Bool
    public var max_phys_bits: UInt8
    public var affinity: [CpuAffinity]?
    public var features: CpuFeatures
    public var nested: Bool
    public var core_scheduling: CoreScheduling
    public var profile: CpuProfile

    /// PVH boot limits guest physical addresses to 46 bits.
    public static let defaultMaxPhysBits: UInt8 = 46

    public init(boot: UInt32 = 1, max: UInt32? = nil) {
        boot_vcpus = boot
        max_vcpus = max ?? boot
        topology = nil
        kvm_hyperv = false
        max_phys_bits = Self.defaultMaxPhysBits
        affinity = nil
        features = CpuFeatures()
        nested = true
        core_scheduling = .Vm
        profile = .Host
    }

    enum CodingKeys: String, CodingKey {
        case boot_vcpus, max_vcpus, topology, kvm_hyperv, max_phys_bits, affinity, features, nested
        case core_scheduling, profile
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Both counts are required once `cpus` is present, as in CH's schema.
        boot_vcpus = try c.decode(UInt32.self, forKey: .boot_vcpus)
        max_vcpus = try c.decode(UInt32.self, forKey: .max_vcpus)
        topology = try c.decodeIfPresent(CpuTopology.self, forKey: .topology)
        kvm_hyperv = try c.decode(.kvm_hyperv, default: false)
        max_phys_bits = try c.decode(.max_phys_bits, default: Self.defaultMaxPhysBits)
        affinity = try c.decodeIfPresent([CpuAffinity].self, forKey: .affinity)
        features = try c.decode(.features, default: CpuFeatures())
        nested = try c.decode(.nested, default: true)
        core_scheduling = try c.decode(.core_scheduling, default: .Vm)
        profile = try c.decode(.profile, default: .Host)
    }

    /// `--cpus boot=N,max=M,topology=t:c:d:p,kvm_hyperv=on,max_phys_bits=B,affinity=[v@[cpus]],
    /// features=[amx],nested=on,core_scheduling=vm|vcpu|off,profile=host`.
    public static func parse(_ input: String) throws -> CpusConfig {
        let flag = "--cpus"
        let p = try OptionParser(flag: flag, input: input,
                                 known: ["boot", "max", "topology", "kvm_hyperv", "max_phys_bits", "affinity",
                                         "features", "nested", "core_scheduling", "profile"])
        let boot = try p.integer("boot", as: UInt32.self) ?? 1
        var config = CpusConfig(boot: boot, max: try p.integer("max", as: UInt32.self))
        if let t = p.string("topology") {
            let parts = t.split(separator: ":", omittingEmptySubsequences: false).compactMap { UInt16($0) }
            guard parts.count == 4 else {
                throw OptionError.invalidValue(flag: flag, option: "topology", value: t,
                                               expected: "threads_per_core:cores_per_die:dies_per_package:packages")
            }
            config.topology = CpuTopology(threads_per_core: parts[0], cores_per_die: parts[1],
                                          dies_per_package: parts[2], packages: parts[3])
        }
        config.kvm_hyperv = try p.bool("kvm_hyperv") ?? false
        config.max_phys_bits = try p.integer("max_phys_bits", as: UInt8.self) ?? defaultMaxPhysBits
        config.affinity = try p.tupleList("affinity", expected: "a list such as [0@[0,2],1@[1]]") {
            OptionParser.integerList($0)
        }?.map { pair in
            guard let vcpu = UInt32(pair.0) else {
                throw OptionError.invalidValue(flag: flag, option: "affinity", value: pair.0, expected: "a vCPU index")
            }
            return CpuAffinity(vcpu: vcpu, host_cpus: pair.1)
        }
        for feature in try p.stringList("features") ?? [] {
            guard feature == "amx" else {
                throw OptionError.invalidValue(flag: flag, option: "features", value: feature, expected: "amx")
            }
            config.features.amx = true
        }
        config.nested = try p.bool("nested") ?? true
        config.core_scheduling = try p.choice("core_scheduling", ["vm": .Vm, "vcpu": .Vcpu, "off": .Off]) ?? .Vm
        config.profile = try p.choice("profile", ["host": .Host]) ?? .Host
        return config
    }
}
