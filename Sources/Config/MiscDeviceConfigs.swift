// The smaller devices of VmConfig: entropy (rng), balloon, virtio-rtc, TPM, plus Landlock rules and PCI
// segment layout. JSON as CH; CLI parsers for their `cloud-hypervisor` flags.

/// virtio-rng fed from `src` (present in every VM by default).
public struct RngConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var src: String

    public static let defaultSource = "/dev/urandom"

    public init(src: String = RngConfig.defaultSource) {
        pci_common = PciDeviceCommonConfig()
        self.src = src
    }

    enum CodingKeys: String, CodingKey { case src }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        src = try c.decode(String.self, forKey: .src)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(src, forKey: .src)
    }

    /// `--rng src=…,iommu=on,pci_segment=N,pci_device_id=N` (a bare path means `src=`).
    public static func parse(_ input: String) throws -> RngConfig {
        let p = try OptionParser(flag: "--rng", input: input, known: ["src"] + PciDeviceCommonConfig.optionsWithIOMMU,
                                 bareKey: "src")
        var config = RngConfig(src: p.string("src") ?? defaultSource)
        config.pci_common = try PciDeviceCommonConfig(parsing: p)
        return config
    }
}

/// virtio-balloon of `size` bytes.
public struct BalloonConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var size: UInt64
    public var deflate_on_oom: Bool
    public var free_page_reporting: Bool

    public init(size: UInt64, deflate_on_oom: Bool = false, free_page_reporting: Bool = false) {
        pci_common = PciDeviceCommonConfig()
        self.size = size
        self.deflate_on_oom = deflate_on_oom
        self.free_page_reporting = free_page_reporting
    }

    enum CodingKeys: String, CodingKey { case size, deflate_on_oom, free_page_reporting }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        size = try c.decode(UInt64.self, forKey: .size)
        deflate_on_oom = try c.decode(.deflate_on_oom, default: false)
        free_page_reporting = try c.decode(.free_page_reporting, default: false)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(size, forKey: .size)
        try c.encode(deflate_on_oom, forKey: .deflate_on_oom)
        try c.encode(free_page_reporting, forKey: .free_page_reporting)
    }

    /// `--balloon size=…,deflate_on_oom=on,free_page_reporting=on,iommu=on,id=…,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> BalloonConfig {
        let p = try OptionParser(flag: "--balloon", input: input,
                                 known: ["size", "deflate_on_oom", "free_page_reporting"] + PciDeviceCommonConfig.optionsWithIOMMU)
        var b = BalloonConfig(size: try p.size("size") ?? 0, deflate_on_oom: try p.bool("deflate_on_oom") ?? false,
                              free_page_reporting: try p.bool("free_page_reporting") ?? false)
        b.pci_common = try PciDeviceCommonConfig(parsing: p)
        return b
    }
}

/// virtio-rtc; only the common PCI fields.
public struct RtcConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig

    public init(pci_common: PciDeviceCommonConfig = PciDeviceCommonConfig()) { self.pci_common = pci_common }

    public init(from decoder: any Decoder) throws { pci_common = try PciDeviceCommonConfig(from: decoder) }

    public func encode(to encoder: any Encoder) throws { try pci_common.encode(to: encoder) }

    /// `--rtc [iommu=on,id=…,pci_segment=N,pci_device_id=N]` (empty enables it with defaults).
    public static func parse(_ input: String) throws -> RtcConfig {
        let p = try OptionParser(flag: "--rtc", input: input, known: PciDeviceCommonConfig.optionsWithIOMMU)
        return RtcConfig(pci_common: try PciDeviceCommonConfig(parsing: p))
    }
}

/// A TPM emulated by swtpm on `socket`.
public struct TpmConfig: Codable, Sendable, Equatable {
    public var socket: String
    public init(socket: String) { self.socket = socket }

    /// `--tpm socket=…`.
    public static func parse(_ input: String) throws -> TpmConfig {
        let p = try OptionParser(flag: "--tpm", input: input, known: ["socket"])
        return TpmConfig(socket: try p.requiredString("socket"))
    }
}

/// One Landlock rule: `access` (`r`, `w` or `rw`) to `path`.
public struct LandlockConfig: Codable, Sendable, Equatable {
    public var path: String
    public var access: String
    public init(path: String, access: String) { self.path = path; self.access = access }

    /// `--landlock-rules path=…,access=rw`.
    public static func parse(_ input: String) throws -> LandlockConfig {
        let p = try OptionParser(flag: "--landlock-rules", input: input, known: ["path", "access"])
        let access = try p.requiredString("access")
        guard access.count <= 2, access.allSatisfy({ $0 == "r" || $0 == "w" }) else {
            throw OptionError.invalidValue(flag: p.flag, option: "access", value: access, expected: "r, w or rw")
        }
        return LandlockConfig(path: try p.requiredString("path"), access: access)
    }
}

/// How a PCI segment's share of the 32- and 64-bit MMIO apertures is weighted.
public struct PciSegmentConfig: Codable, Sendable, Equatable {
    public var pci_segment: UInt16
    public var mmio32_aperture_weight: UInt32
    public var mmio64_aperture_weight: UInt32

    public init(pci_segment: UInt16 = 0, mmio32_aperture_weight: UInt32 = 1, mmio64_aperture_weight: UInt32 = 1) {
        self.pci_segment = pci_segment
        self.mmio32_aperture_weight = mmio32_aperture_weight
        self.mmio64_aperture_weight = mmio64_aperture_weight
    }

    enum CodingKeys: String, CodingKey { case pci_segment, mmio32_aperture_weight, mmio64_aperture_weight }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_segment = try c.decode(.pci_segment, default: 0)
        mmio32_aperture_weight = try c.decode(.mmio32_aperture_weight, default: 1)
        mmio64_aperture_weight = try c.decode(.mmio64_aperture_weight, default: 1)
    }

    /// `--pci-segment pci_segment=N,mmio32_aperture_weight=N,mmio64_aperture_weight=N`.
    public static func parse(_ input: String) throws -> PciSegmentConfig {
        let p = try OptionParser(flag: "--pci-segment", input: input,
                                 known: ["pci_segment", "mmio32_aperture_weight", "mmio64_aperture_weight"])
        return PciSegmentConfig(pci_segment: try p.integer("pci_segment") ?? 0,
                                mmio32_aperture_weight: try p.integer("mmio32_aperture_weight") ?? 1,
                                mmio64_aperture_weight: try p.integer("mmio64_aperture_weight") ?? 1)
    }
}
