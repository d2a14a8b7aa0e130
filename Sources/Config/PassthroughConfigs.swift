// Devices whose emulation lives outside the VMM: VFIO passthrough (CH's DeviceConfig), vfio-user
// (UserDeviceConfig) and generic vhost-user backends (GenericVhostUserConfig).

/// A VFIO device, named by its sysfs `path` or by an already opened cdev `fd`.
public struct DeviceConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var path: String?
    /// A cdev descriptor; from JSON it decodes as -1 (the real one travels as SCM_RIGHTS).
    public var fd: Int32?
    public var x_nv_gpudirect_clique: UInt8?
    public var x_exclude_mmap_bars: [UInt64]

    public init(path: String? = nil, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.path = path
        fd = nil
        x_nv_gpudirect_clique = nil
        x_exclude_mmap_bars = []
    }

    enum CodingKeys: String, CodingKey { case path, fd, x_nv_gpudirect_clique, x_exclude_mmap_bars }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        fd = try c.decodeStaleFD(.fd)
        x_nv_gpudirect_clique = try c.decodeIfPresent(UInt8.self, forKey: .x_nv_gpudirect_clique)
        x_exclude_mmap_bars = try c.decode(.x_exclude_mmap_bars, default: [])
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encodeIfPresent(fd, forKey: .fd)
        try c.encodeIfPresent(x_nv_gpudirect_clique, forKey: .x_nv_gpudirect_clique)
        try c.encode(x_exclude_mmap_bars, forKey: .x_exclude_mmap_bars)
    }

    /// `--device path=…|fd=N,iommu=on,id=…,pci_segment=N,pci_device_id=N,x_nv_gpudirect_clique=N,
    /// x_exclude_mmap_bars=[…]`.
    public static func parse(_ input: String) throws -> DeviceConfig {
        let p = try OptionParser(flag: "--device", input: input,
                                 known: ["path", "fd", "x_nv_gpudirect_clique", "x_exclude_mmap_bars"]
                                     + PciDeviceCommonConfig.optionsWithIOMMU)
        var d = DeviceConfig(path: p.string("path"))
        d.pci_common = try PciDeviceCommonConfig(parsing: p)
        d.fd = try p.integer("fd")
        d.x_nv_gpudirect_clique = try p.integer("x_nv_gpudirect_clique")
        d.x_exclude_mmap_bars = try p.integers("x_exclude_mmap_bars") ?? []
        return d
    }
}

/// A vfio-user device served by another process on `socket`.
public struct UserDeviceConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var socket: String

    public init(socket: String, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.socket = socket
    }

    enum CodingKeys: String, CodingKey { case socket }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        socket = try c.decode(String.self, forKey: .socket)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(socket, forKey: .socket)
    }

    /// `--user-device socket=…,id=…,pci_segment=N,pci_device_id=N`.
    public static func parse(_ input: String) throws -> UserDeviceConfig {
        let p = try OptionParser(flag: "--user-device", input: input, known: ["socket"] + PciDeviceCommonConfig.options)
        var d = UserDeviceConfig(socket: try p.requiredString("socket"))
        d.pci_common = try PciDeviceCommonConfig(parsing: p)
        return d
    }
}

/// Any virtio device type implemented by a vhost-user backend on `socket`.
public struct GenericVhostUserConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var pci_common: PciDeviceCommonConfig
    public var socket: String
    public var queue_sizes: [UInt16]
    /// The virtio device id (26 = fs, 2 = block, …).
    public var device_type: UInt32

    public init(socket: String, queue_sizes: [UInt16], device_type: UInt32, id: String? = nil) {
        pci_common = PciDeviceCommonConfig(id: id)
        self.socket = socket
        self.queue_sizes = queue_sizes
        self.device_type = device_type
    }

    enum CodingKeys: String, CodingKey { case socket, queue_sizes, device_type }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pci_common = try PciDeviceCommonConfig(from: decoder)
        socket = try c.decode(String.self, forKey: .socket)
        queue_sizes = try c.decode([UInt16].self, forKey: .queue_sizes)
        device_type = try c.decode(UInt32.self, forKey: .device_type)
    }

    public func encode(to encoder: any Encoder) throws {
        try pci_common.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(socket, forKey: .socket)
        try c.encode(queue_sizes, forKey: .queue_sizes)
        try c.encode(device_type, forKey: .device_type)
    }

    /// Virtio device type names accepted by `device_type=` (linux/virtio_ids.h), as CH.
    static let deviceTypes: [String: UInt32] = [
        "net": 1, "block": 2, "console": 3, "rng": 4, "balloon": 5, "iomem": 6, "rpmsg": 7, "scsi": 8, "9p": 9,
        "mac80211_wlan": 10, "rproc_serial": 11, "caif": 12, "memory_balloon": 13, "gpu": 16, "clock": 17,
        "input": 18, "vsock": 19, "crypto": 20, "signal_dist": 21, "pstore": 22, "iommu": 23, "mem": 24,
        "sound": 25, "fs": 26, "pmem": 27, "rpmb": 28, "mac80211_hwsim": 29, "video_encoder": 30,
        "video_decoder": 31, "scmi": 32, "nitro_sec_mod": 33, "i2c": 34, "watchdog": 35, "can": 36, "dmabuf": 37,
        "param_serv": 38, "audio_policy": 39, "bt": 40, "gpio": 41, "rdma": 42, "camera": 43, "ism": 44,
        "spi": 45, "tee": 46, "cpu_balloon": 47, "media": 48, "usb": 49,
    ]

    /// Types a vhost-user backend cannot implement: the VMM must see IOMMU mappings and watchdog resets itself.
    static let unsupportedDeviceTypes: Set<UInt32> = [23, 35]

    /// `--generic-vhost-user socket=…,device_type=fs|26,queue_sizes=[…],id=…,pci_segment=N,pci_device_id=N`
    /// (`virtio_id=` is CH's deprecated spelling of `device_type=`).
    public static func parse(_ input: String) throws -> GenericVhostUserConfig {
        let p = try OptionParser(flag: "--generic-vhost-user", input: input,
                                 known: ["device_type", "virtio_id", "queue_sizes", "socket"] + PciDeviceCommonConfig.options)
        let socket = try p.requiredString("socket")
        let queueSizes = try p.required("queue_sizes", p.integers("queue_sizes", as: UInt16.self))
        let option = p.isSet("virtio_id") && !p.isSet("device_type") ? "virtio_id" : "device_type"
        let name = try p.requiredString(option)
        // Numbers are accepted without leading zeros, as CH.
        let number = name.first.map { ("1"..."9").contains($0) } == true ? UInt32(name) : nil
        guard let type = deviceTypes[name] ?? number else {
            throw OptionError.invalidValue(flag: p.flag, option: option, value: name,
                                           expected: "a virtio device type name (fs, block, net, …) or number")
        }
        guard !unsupportedDeviceTypes.contains(type) else {
            throw OptionError.invalidValue(flag: p.flag, option: option, value: name,
                                           expected: "a device type vhost-user can implement (not iommu or watchdog)")
        }
        var d = GenericVhostUserConfig(socket: socket, queue_sizes: queueSizes, device_type: type)
        d.pci_common = try PciDeviceCommonConfig(parsing: p)
        return d
    }
}
