/// Platform-wide settings (CH's PlatformConfig): PCI segments, vIOMMU placement, iommufd and the SMBIOS strings.
public struct PlatformConfig: Codable, Sendable, Equatable {
    public var num_pci_segments: UInt16
    public var iommu_segments: [UInt16]?
    public var iommu_address_width_bits: UInt8
    public var system_serial_number: String?
    public var system_uuid: String?
    public var oem_strings: [String]?
    public var system_manufacturer: String?
    public var system_product_name: String?
    public var system_version: String?
    public var system_family: String?
    public var system_sku_number: String?
    public var chassis_asset_tag: String?
    public var iommufd: Bool
    /// From JSON this decodes as -1 (descriptors travel as SCM_RIGHTS).
    public var iommufd_fd: Int32?
    public var vfio_p2p_dma: Bool

    public static let maxPciSegments: UInt16 = 96
    public static let maxIOMMUAddressWidthBits: UInt8 = 64

    public init(num_pci_segments: UInt16 = 1) {
        self.num_pci_segments = num_pci_segments
        iommu_segments = nil
        iommu_address_width_bits = Self.maxIOMMUAddressWidthBits
        system_serial_number = nil
        system_uuid = nil
        oem_strings = nil
        system_manufacturer = nil
        system_product_name = nil
        system_version = nil
        system_family = nil
        system_sku_number = nil
        chassis_asset_tag = nil
        iommufd = false
        iommufd_fd = nil
        vfio_p2p_dma = true
    }

    enum CodingKeys: String, CodingKey {
        case num_pci_segments, iommu_segments, iommu_address_width_bits, system_serial_number, system_uuid
        case oem_strings, system_manufacturer, system_product_name, system_version, system_family
        case system_sku_number, chassis_asset_tag, iommufd, iommufd_fd, vfio_p2p_dma
        /// Older names CH still accepts for the SMBIOS serial number and UUID.
        case serial_number, uuid
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        num_pci_segments = try c.decode(.num_pci_segments, default: 1)
        iommu_segments = try c.decodeIfPresent([UInt16].self, forKey: .iommu_segments)
        iommu_address_width_bits = try c.decode(.iommu_address_width_bits, default: Self.maxIOMMUAddressWidthBits)
        system_serial_number = try c.decodeIfPresent(String.self, forKey: .system_serial_number)
            ?? c.decodeIfPresent(String.self, forKey: .serial_number)
        system_uuid = try c.decodeIfPresent(String.self, forKey: .system_uuid)
            ?? c.decodeIfPresent(String.self, forKey: .uuid)
        oem_strings = try c.decodeIfPresent([String].self, forKey: .oem_strings)
        system_manufacturer = try c.decodeIfPresent(String.self, forKey: .system_manufacturer)
        system_product_name = try c.decodeIfPresent(String.self, forKey: .system_product_name)
        system_version = try c.decodeIfPresent(String.self, forKey: .system_version)
        system_family = try c.decodeIfPresent(String.self, forKey: .system_family)
        system_sku_number = try c.decodeIfPresent(String.self, forKey: .system_sku_number)
        chassis_asset_tag = try c.decodeIfPresent(String.self, forKey: .chassis_asset_tag)
        iommufd = try c.decode(.iommufd, default: false)
        iommufd_fd = try c.decodeStaleFD(.iommufd_fd)
        vfio_p2p_dma = try c.decode(.vfio_p2p_dma, default: true)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(num_pci_segments, forKey: .num_pci_segments)
        try c.encodeIfPresent(iommu_segments, forKey: .iommu_segments)
        try c.encode(iommu_address_width_bits, forKey: .iommu_address_width_bits)
        try c.encodeIfPresent(system_serial_number, forKey: .system_serial_number)
        try c.encodeIfPresent(system_uuid, forKey: .system_uuid)
        try c.encodeIfPresent(oem_strings, forKey: .oem_strings)
        try c.encodeIfPresent(system_manufacturer, forKey: .system_manufacturer)
        try c.encodeIfPresent(system_product_name, forKey: .system_product_name)
        try c.encodeIfPresent(system_version, forKey: .system_version)
        try c.encodeIfPresent(system_family, forKey: .system_family)
        try c.encodeIfPresent(system_sku_number, forKey: .system_sku_number)
        try c.encodeIfPresent(chassis_asset_tag, forKey: .chassis_asset_tag)
        try c.encode(iommufd, forKey: .iommufd)
        try c.encodeIfPresent(iommufd_fd, forKey: .iommufd_fd)
        try c.encode(vfio_p2p_dma, forKey: .vfio_p2p_dma)
    }

    /// SMBIOS string options of `--platform`, each setting the field of the same name.
    private static var smbiosFields: [(String, WritableKeyPath<PlatformConfig, String?>)] { [
        ("system_manufacturer", \.system_manufacturer), ("system_product_name", \.system_product_name),
        ("system_version", \.system_version), ("system_serial_number", \.system_serial_number),
        ("system_uuid", \.system_uuid), ("system_sku_number", \.system_sku_number),
        ("system_family", \.system_family), ("chassis_asset_tag", \.chassis_asset_tag),
    ] }

    /// `--platform num_pci_segments=N,iommu_segments=[…],iommu_address_width=N,iommufd=on,iommufd_fd=N,
    /// vfio_p2p_dma=on,oem_strings=[…],system_*=…,chassis_asset_tag=…` (`serial_number=`/`uuid=` are CH's
    /// deprecated spellings).
    public static func parse(_ input: String) throws -> PlatformConfig {
        let p = try OptionParser(
            flag: "--platform", input: input,
            known: ["num_pci_segments", "iommu_segments", "iommu_address_width", "serial_number", "uuid",
                    "oem_strings", "iommufd", "iommufd_fd", "vfio_p2p_dma"] + smbiosFields.map(\.0))
        var config = PlatformConfig(num_pci_segments: try p.integer("num_pci_segments") ?? 1)
        config.iommu_segments = try p.integers("iommu_segments")
        config.iommu_address_width_bits = try p.integer("iommu_address_width") ?? maxIOMMUAddressWidthBits
        config.oem_strings = try p.stringList("oem_strings")
        config.iommufd_fd = try p.integer("iommufd_fd")
        // `iommufd_fd=` implies `iommufd=on` unless iommufd is given explicitly.
        config.iommufd = try p.bool("iommufd") ?? (config.iommufd_fd != nil)
        config.vfio_p2p_dma = try p.bool("vfio_p2p_dma") ?? true
        for (key, field) in smbiosFields { config[keyPath: field] = p.string(key) }
        config.system_serial_number = config.system_serial_number ?? p.string("serial_number")
        config.system_uuid = config.system_uuid ?? p.string("uuid")
        return config
    }
}
