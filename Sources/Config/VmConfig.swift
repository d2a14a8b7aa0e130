/// Cloud Hypervisor's VmConfig, field for field (JSON names and defaults as CH), as far as this VMM
/// implements devices. Unknown JSON fields are ignored, as CH does. The CLI and `vm.create` both produce it.
public struct VmConfig: Codable, Sendable, Equatable {
    public var cpus: CpusConfig
    public var memory: MemoryConfig
    public var payload: PayloadConfig?
    public var serial: ConsoleConfig
    public var console: ConsoleConfig
    public var rng: RngConfig
    public var iommu: Bool
    public var watchdog: Bool
    public var pvpanic: Bool

    public init(cpus: CpusConfig = CpusConfig(), memory: MemoryConfig = MemoryConfig(),
                payload: PayloadConfig? = nil, serial: ConsoleConfig = .defaultSerial,
                console: ConsoleConfig = .defaultConsole, rng: RngConfig = RngConfig()) {
        self.cpus = cpus
        self.memory = memory
        self.payload = payload
        self.serial = serial
        self.console = console
        self.rng = rng
        self.iommu = false
        self.watchdog = false
        self.pvpanic = false
    }

    enum CodingKeys: String, CodingKey {
        case cpus, memory, payload, serial, console, rng, iommu, watchdog, pvpanic
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpus = try c.decodeIfPresent(CpusConfig.self, forKey: .cpus) ?? CpusConfig()
        memory = try c.decodeIfPresent(MemoryConfig.self, forKey: .memory) ?? MemoryConfig()
        payload = try c.decodeIfPresent(PayloadConfig.self, forKey: .payload)
        serial = try c.decodeIfPresent(ConsoleConfig.self, forKey: .serial) ?? .defaultSerial
        console = try c.decodeIfPresent(ConsoleConfig.self, forKey: .console) ?? .defaultConsole
        rng = try c.decodeIfPresent(RngConfig.self, forKey: .rng) ?? RngConfig()
        iommu = try c.decodeIfPresent(Bool.self, forKey: .iommu) ?? false
        watchdog = try c.decodeIfPresent(Bool.self, forKey: .watchdog) ?? false
        pvpanic = try c.decodeIfPresent(Bool.self, forKey: .pvpanic) ?? false
    }
}

public struct CpuTopology: Codable, Sendable, Equatable {
    public var threads_per_core: UInt8
    public var cores_per_die: UInt8
    public var dies_per_package: UInt8
    public var packages: UInt8
}

public struct CpusConfig: Codable, Sendable, Equatable {
    public var boot_vcpus: UInt32
    public var max_vcpus: UInt32
    public var topology: CpuTopology?
    public var kvm_hyperv: Bool
    public var max_phys_bits: UInt8
    public var nested: Bool

    public init(boot: UInt32 = 1, max: UInt32? = nil) {
        boot_vcpus = boot
        max_vcpus = max ?? boot
        topology = nil
        kvm_hyperv = false
        max_phys_bits = 46
        nested = true
    }

    enum CodingKeys: String, CodingKey { case boot_vcpus, max_vcpus, topology, kvm_hyperv, max_phys_bits, nested }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Both counts are required once `cpus` is present, as in CH's schema.
        boot_vcpus = try c.decode(UInt32.self, forKey: .boot_vcpus)
        max_vcpus = try c.decode(UInt32.self, forKey: .max_vcpus)
        topology = try c.decodeIfPresent(CpuTopology.self, forKey: .topology)
        kvm_hyperv = try c.decodeIfPresent(Bool.self, forKey: .kvm_hyperv) ?? false
        max_phys_bits = try c.decodeIfPresent(UInt8.self, forKey: .max_phys_bits) ?? 46
        nested = try c.decodeIfPresent(Bool.self, forKey: .nested) ?? true
    }

    /// `--cpus boot=N,max=M,topology=t:c:d:p,kvm_hyperv=on,max_phys_bits=B,nested=on`.
    public static func parse(_ input: String) throws -> CpusConfig {
        let flag = "--cpus"
        let p = try OptionParser(flag: flag, input: input,
                                 known: ["boot", "max", "topology", "kvm_hyperv", "max_phys_bits", "nested", "affinity", "features"])
        let boot = try p.integer("boot", as: UInt32.self) ?? 1
        var config = CpusConfig(boot: boot, max: try p.integer("max", as: UInt32.self))
        if let t = p.string("topology") {
            let parts = t.split(separator: ":").compactMap { UInt8($0) }
            guard parts.count == 4 else {
                throw OptionError.invalidValue(flag: flag, option: "topology", value: t,
                                               expected: "threads_per_core:cores_per_die:dies_per_package:packages")
            }
            config.topology = CpuTopology(threads_per_core: parts[0], cores_per_die: parts[1],
                                          dies_per_package: parts[2], packages: parts[3])
        }
        config.kvm_hyperv = try p.bool("kvm_hyperv") ?? false
        config.max_phys_bits = try p.integer("max_phys_bits", as: UInt8.self) ?? 46
        config.nested = try p.bool("nested") ?? true
        return config
    }
}

public struct MemoryConfig: Codable, Sendable, Equatable {
    public static let defaultSize: UInt64 = 512 << 20

    public var size: UInt64
    public var mergeable: Bool
    public var hotplug_method: String
    public var hotplug_size: UInt64?
    public var shared: Bool
    public var hugepages: Bool
    public var hugepage_size: UInt64?
    public var prefault: Bool
    public var thp: Bool

    public init(size: UInt64 = MemoryConfig.defaultSize, shared: Bool = false, hugepages: Bool = false,
                prefault: Bool = false) {
        self.size = size
        self.mergeable = false
        self.hotplug_method = "Acpi"
        self.hotplug_size = nil
        self.shared = shared
        self.hugepages = hugepages
        self.hugepage_size = nil
        self.prefault = prefault
        self.thp = true
    }

    enum CodingKeys: String, CodingKey {
        case size, mergeable, hotplug_method, hotplug_size, shared, hugepages, hugepage_size, prefault, thp
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        size = try c.decode(UInt64.self, forKey: .size)
        mergeable = try c.decodeIfPresent(Bool.self, forKey: .mergeable) ?? false
        hotplug_method = try c.decodeIfPresent(String.self, forKey: .hotplug_method) ?? "Acpi"
        hotplug_size = try c.decodeIfPresent(UInt64.self, forKey: .hotplug_size)
        shared = try c.decodeIfPresent(Bool.self, forKey: .shared) ?? false
        hugepages = try c.decodeIfPresent(Bool.self, forKey: .hugepages) ?? false
        hugepage_size = try c.decodeIfPresent(UInt64.self, forKey: .hugepage_size)
        prefault = try c.decodeIfPresent(Bool.self, forKey: .prefault) ?? false
        thp = try c.decodeIfPresent(Bool.self, forKey: .thp) ?? true
    }

    /// `--memory size=512M,shared=on,hugepages=on,prefault=on,…`.
    public static func parse(_ input: String) throws -> MemoryConfig {
        let p = try OptionParser(flag: "--memory", input: input,
                                 known: ["size", "mergeable", "shared", "hugepages", "hugepage_size", "prefault",
                                         "hotplug_method", "hotplug_size", "thp"])
        var config = MemoryConfig(size: try p.size("size") ?? defaultSize,
                                  shared: try p.bool("shared") ?? false,
                                  hugepages: try p.bool("hugepages") ?? false,
                                  prefault: try p.bool("prefault") ?? false)
        config.mergeable = try p.bool("mergeable") ?? false
        config.hugepage_size = try p.size("hugepage_size")
        config.hotplug_size = try p.size("hotplug_size")
        config.thp = try p.bool("thp") ?? true
        if let method = p.string("hotplug_method") {
            switch method.lowercased() {
            case "acpi": config.hotplug_method = "Acpi"
            case "virtio-mem": config.hotplug_method = "VirtioMem"
            default:
                throw OptionError.invalidValue(flag: "--memory", option: "hotplug_method", value: method,
                                               expected: "acpi or virtio-mem")
            }
        }
        return config
    }
}

public struct PayloadConfig: Codable, Sendable, Equatable {
    public var firmware: String?
    public var kernel: String?
    public var cmdline: String?
    public var initramfs: String?

    public init(kernel: String? = nil, cmdline: String? = nil, initramfs: String? = nil, firmware: String? = nil) {
        self.firmware = firmware
        self.kernel = kernel
        self.cmdline = cmdline
        self.initramfs = initramfs
    }
}

/// Where a console's bytes go (CH's ConsoleOutputMode; PascalCase in JSON, lowercase on the CLI).
public enum ConsoleMode: String, Codable, Sendable, Equatable, CaseIterable {
    case Off, Pty, Tty, File, Socket, Null
}

public struct ConsoleConfig: Codable, Sendable, Equatable {
    public var mode: ConsoleMode
    public var file: String?
    public var socket: String?
    public var iommu: Bool

    public init(mode: ConsoleMode, file: String? = nil, socket: String? = nil) {
        self.mode = mode
        self.file = file
        self.socket = socket
        self.iommu = false
    }

    public static let defaultSerial = ConsoleConfig(mode: .Null)
    public static let defaultConsole = ConsoleConfig(mode: .Tty)

    enum CodingKeys: String, CodingKey { case mode, file, socket, iommu }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(ConsoleMode.self, forKey: .mode)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        socket = try c.decodeIfPresent(String.self, forKey: .socket)
        iommu = try c.decodeIfPresent(Bool.self, forKey: .iommu) ?? false
    }

    /// `off|null|pty|tty|file=PATH|socket=PATH` (for `--serial` and `--console`).
    public static func parse(_ input: String, flag: String) throws -> ConsoleConfig {
        let p = try OptionParser(flag: flag, input: input, known: ["mode", "file", "socket", "iommu"], bareKey: "mode")
        var config: ConsoleConfig
        if let file = p.string("file") {
            config = ConsoleConfig(mode: .File, file: file)
        } else if let socket = p.string("socket") {
            config = ConsoleConfig(mode: .Socket, socket: socket)
        } else {
            let text = try p.requiredString("mode")
            guard let mode = ConsoleMode.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }),
                  mode != .File, mode != .Socket else {
                throw OptionError.invalidValue(flag: flag, option: "mode", value: text,
                                               expected: "off, null, pty, tty, file=PATH or socket=PATH")
            }
            config = ConsoleConfig(mode: mode)
        }
        config.iommu = try p.bool("iommu") ?? false
        return config
    }
}

public struct RngConfig: Codable, Sendable, Equatable {
    public var src: String
    public var iommu: Bool

    public init(src: String = "/dev/urandom") {
        self.src = src
        self.iommu = false
    }

    enum CodingKeys: String, CodingKey { case src, iommu }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        src = try c.decodeIfPresent(String.self, forKey: .src) ?? "/dev/urandom"
        iommu = try c.decodeIfPresent(Bool.self, forKey: .iommu) ?? false
    }

    public static func parse(_ input: String) throws -> RngConfig {
        let p = try OptionParser(flag: "--rng", input: input, known: ["src", "iommu"], bareKey: "src")
        var config = RngConfig(src: p.string("src") ?? "/dev/urandom")
        config.iommu = try p.bool("iommu") ?? false
        return config
    }
}
