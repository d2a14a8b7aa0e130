/// Cloud Hypervisor's VmConfig, field for field (JSON names, defaults and shape as CH's serde): unknown fields
/// are ignored, missing ones take CH's defaults, unset optional ones are omitted on output (CH serializes
/// VmConfig with `skip_serializing_none`). The CLI and `vm.create` both produce it; `vm.info` returns it.
public struct VmConfig: Codable, Sendable, Equatable {
    public var cpus: CpusConfig
    public var memory: MemoryConfig
    public var payload: PayloadConfig?
    public var rate_limit_groups: [RateLimiterGroupConfig]?
    public var disks: [DiskConfig]?
    public var net: [NetConfig]?
    public var rng: RngConfig
    public var balloon: BalloonConfig?
    public var generic_vhost_user: [GenericVhostUserConfig]?
    public var fs: [FsConfig]?
    public var pmem: [PmemConfig]?
    /// The legacy UART; written without the PCI fields (CH's SerialConfig).
    public var serial: ConsoleConfig
    public var console: ConsoleConfig
    public var debug_console: DebugConsoleConfig
    public var devices: [DeviceConfig]?
    public var user_devices: [UserDeviceConfig]?
    public var vdpa: [VdpaConfig]?
    public var vsock: VsockConfig?
    public var pvpanic: Bool
    public var iommu: Bool
    public var numa: [NumaConfig]?
    public var watchdog: Bool
    public var rtc: RtcConfig?
    public var pci_segments: [PciSegmentConfig]?
    public var platform: PlatformConfig?
    public var tpm: TpmConfig?
    public var landlock_enable: Bool
    public var landlock_rules: [LandlockConfig]?

    public init(cpus: CpusConfig = CpusConfig(), memory: MemoryConfig = MemoryConfig(),
                payload: PayloadConfig? = nil, serial: ConsoleConfig = .defaultSerial,
                console: ConsoleConfig = .defaultConsole, rng: RngConfig = RngConfig()) {
        self.cpus = cpus
        self.memory = memory
        self.payload = payload
        rate_limit_groups = nil
        disks = nil
        net = nil
        self.rng = rng
        balloon = nil
        generic_vhost_user = nil
        fs = nil
        pmem = nil
        self.serial = serial
        self.console = console
        debug_console = DebugConsoleConfig()
        devices = nil
        user_devices = nil
        vdpa = nil
        vsock = nil
        pvpanic = false
        iommu = false
        numa = nil
        watchdog = false
        rtc = nil
        pci_segments = nil
        platform = nil
        tpm = nil
        landlock_enable = false
        landlock_rules = nil
    }

    enum CodingKeys: String, CodingKey {
        case cpus, memory, payload, rate_limit_groups, disks, net, rng, balloon, generic_vhost_user, fs, pmem
        case serial, console, debug_console, devices, user_devices, vdpa, vsock, pvpanic, iommu, numa, watchdog
        case rtc, pci_segments, platform, tpm, landlock_enable, landlock_rules
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpus = try c.decode(.cpus, default: CpusConfig())
        memory = try c.decode(.memory, default: MemoryConfig())
        payload = try c.decodeIfPresent(PayloadConfig.self, forKey: .payload)
        rate_limit_groups = try c.decodeIfPresent([RateLimiterGroupConfig].self, forKey: .rate_limit_groups)
        disks = try c.decodeIfPresent([DiskConfig].self, forKey: .disks)
        net = try c.decodeIfPresent([NetConfig].self, forKey: .net)
        rng = try c.decode(.rng, default: RngConfig())
        balloon = try c.decodeIfPresent(BalloonConfig.self, forKey: .balloon)
        generic_vhost_user = try c.decodeIfPresent([GenericVhostUserConfig].self, forKey: .generic_vhost_user)
        fs = try c.decodeIfPresent([FsConfig].self, forKey: .fs)
        pmem = try c.decodeIfPresent([PmemConfig].self, forKey: .pmem)
        serial = try c.decode(.serial, default: .defaultSerial)
        // A serial port is not a PCI device: CH's SerialConfig has no such fields, so any given are dropped.
        serial.pci_common = PciDeviceCommonConfig()
        console = try c.decode(.console, default: .defaultConsole)
        debug_console = try c.decode(.debug_console, default: DebugConsoleConfig())
        devices = try c.decodeIfPresent([DeviceConfig].self, forKey: .devices)
        user_devices = try c.decodeIfPresent([UserDeviceConfig].self, forKey: .user_devices)
        vdpa = try c.decodeIfPresent([VdpaConfig].self, forKey: .vdpa)
        vsock = try c.decodeIfPresent(VsockConfig.self, forKey: .vsock)
        pvpanic = try c.decode(.pvpanic, default: false)
        iommu = try c.decode(.iommu, default: false)
        numa = try c.decodeIfPresent([NumaConfig].self, forKey: .numa)
        watchdog = try c.decode(.watchdog, default: false)
        rtc = try c.decodeIfPresent(RtcConfig.self, forKey: .rtc)
        pci_segments = try c.decodeIfPresent([PciSegmentConfig].self, forKey: .pci_segments)
        platform = try c.decodeIfPresent(PlatformConfig.self, forKey: .platform)
        tpm = try c.decodeIfPresent(TpmConfig.self, forKey: .tpm)
        landlock_enable = try c.decode(.landlock_enable, default: false)
        landlock_rules = try c.decodeIfPresent([LandlockConfig].self, forKey: .landlock_rules)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cpus, forKey: .cpus)
        try c.encode(memory, forKey: .memory)
        try c.encodeIfPresent(payload, forKey: .payload)
        try c.encodeIfPresent(rate_limit_groups, forKey: .rate_limit_groups)
        try c.encodeIfPresent(disks, forKey: .disks)
        try c.encodeIfPresent(net, forKey: .net)
        try c.encode(rng, forKey: .rng)
        try c.encodeIfPresent(balloon, forKey: .balloon)
        try c.encodeIfPresent(generic_vhost_user, forKey: .generic_vhost_user)
        try c.encodeIfPresent(fs, forKey: .fs)
        try c.encodeIfPresent(pmem, forKey: .pmem)
        try serial.encodeOutput(to: c.superEncoder(forKey: .serial))
        try c.encode(console, forKey: .console)
        try c.encode(debug_console, forKey: .debug_console)
        try c.encodeIfPresent(devices, forKey: .devices)
        try c.encodeIfPresent(user_devices, forKey: .user_devices)
        try c.encodeIfPresent(vdpa, forKey: .vdpa)
        try c.encodeIfPresent(vsock, forKey: .vsock)
        try c.encode(pvpanic, forKey: .pvpanic)
        try c.encode(iommu, forKey: .iommu)
        try c.encodeIfPresent(numa, forKey: .numa)
        try c.encode(watchdog, forKey: .watchdog)
        try c.encodeIfPresent(rtc, forKey: .rtc)
        try c.encodeIfPresent(pci_segments, forKey: .pci_segments)
        try c.encodeIfPresent(platform, forKey: .platform)
        try c.encodeIfPresent(tpm, forKey: .tpm)
        try c.encode(landlock_enable, forKey: .landlock_enable)
        try c.encodeIfPresent(landlock_rules, forKey: .landlock_rules)
    }
}

/// What the VM boots: a kernel (PVH ELF or bzImage) with optional initramfs and command line, or firmware.
/// Optional in JSON, required at boot.
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
