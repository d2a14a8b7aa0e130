/// The fields every PCI device config shares (CH's `PciDeviceCommonConfig`, flattened into the device's JSON):
/// `id`, `iommu` (written only when true), `pci_segment` (always written) and `pci_device_id`.
public struct PciDeviceCommonConfig: Codable, Sendable, Equatable {
    public var id: String?
    public var iommu: Bool
    public var pci_segment: UInt16
    public var pci_device_id: UInt8?

    public init(id: String? = nil, iommu: Bool = false, pci_segment: UInt16 = 0, pci_device_id: UInt8? = nil) {
        self.id = id
        self.iommu = iommu
        self.pci_segment = pci_segment
        self.pci_device_id = pci_device_id
    }

    enum CodingKeys: String, CodingKey { case id, iommu, pci_segment, pci_device_id }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        iommu = try c.decode(.iommu, default: false)
        pci_segment = try c.decode(.pci_segment, default: 0)
        pci_device_id = try c.decodeIfPresent(UInt8.self, forKey: .pci_device_id)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(id, forKey: .id)
        if iommu { try c.encode(iommu, forKey: .iommu) }
        try c.encode(pci_segment, forKey: .pci_segment)
        try c.encodeIfPresent(pci_device_id, forKey: .pci_device_id)
    }

    /// CLI option names, without and with `iommu` (devices that cannot sit behind the vIOMMU lack it).
    static let options = ["id", "pci_segment", "pci_device_id"]
    static let optionsWithIOMMU = ["id", "iommu", "pci_segment", "pci_device_id"]

    /// Reads the common options from an already parsed device option string.
    init(parsing p: OptionParser) throws {
        self.init(id: try p.identifier("id"),
                  iommu: try p.bool("iommu") ?? false,
                  pci_segment: try p.integer("pci_segment") ?? 0,
                  pci_device_id: try p.integer("pci_device_id"))
    }
}

/// A device config carrying `PciDeviceCommonConfig`; gives it `id`, `iommu`, … as if they were its own fields,
/// which is how they appear in CH's JSON.
public protocol PciDeviceConfig {
    var pci_common: PciDeviceCommonConfig { get set }
}

extension PciDeviceConfig {
    public var id: String? {
        get { pci_common.id }
        set { pci_common.id = newValue }
    }
    public var iommu: Bool {
        get { pci_common.iommu }
        set { pci_common.iommu = newValue }
    }
    public var pci_segment: UInt16 {
        get { pci_common.pci_segment }
        set { pci_common.pci_segment = newValue }
    }
    public var pci_device_id: UInt8? {
        get { pci_common.pci_device_id }
        set { pci_common.pci_device_id = newValue }
    }
}
