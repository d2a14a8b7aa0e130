import ArgumentParser
import Config

// `add-*` and `remove-device`: the argument is CH's device option string, turned into the JSON body by the
// same parsers as `cloud-hypervisor --disk/--net/…`.

struct AddDisk: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-disk", abstract: "Add block device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "path=<disk_image_path>,readonly=on|off,…") var diskConfig: String
    func request() throws -> APIRequest { try .put("vm.add-disk", parsing: diskConfig, what: "disk", DiskConfig.parse) }
}

struct AddNet: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-net", abstract: "Add network device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "tap=<if_name>,ip=<ip_addr>,mask=<net_mask>,mac=<mac_addr>,…") var netConfig: String
    func request() throws -> APIRequest {
        try .put("vm.add-net", parsing: netConfig, what: "network") { text in
            let config = try NetConfig.parse(text)
            try refuseDescriptors(option: "fd", if: config.fds != nil)
            return config
        }
    }
}

struct AddFs: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-fs", abstract: "Add virtio-fs backed fs device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "tag=<tag_name>,socket=<socket_path>,…") var fsConfig: String
    func request() throws -> APIRequest { try .put("vm.add-fs", parsing: fsConfig, what: "filesystem", FsConfig.parse) }
}

struct AddPmem: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-pmem", abstract: "Add persistent memory device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "file=<backing_file_path>,size=<persistent_memory_size>,…") var pmemConfig: String
    func request() throws -> APIRequest {
        try .put("vm.add-pmem", parsing: pmemConfig, what: "persistent memory", PmemConfig.parse)
    }
}

struct AddVsock: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-vsock", abstract: "Add vsock device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "cid=<context_id>,socket=<socket_path>,…") var vsockConfig: String
    func request() throws -> APIRequest { try .put("vm.add-vsock", parsing: vsockConfig, what: "vsock", VsockConfig.parse) }
}

struct AddVdpa: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-vdpa", abstract: "Add vDPA device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "path=<device_path>,num_queues=<number_of_queues>,…") var vdpaConfig: String
    func request() throws -> APIRequest { try .put("vm.add-vdpa", parsing: vdpaConfig, what: "vDPA device", VdpaConfig.parse) }
}

struct AddDevice: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-device", abstract: "Add VFIO device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "path=<device_path>,iommu=on|off,id=<device_id>,…") var deviceConfig: String
    func request() throws -> APIRequest {
        try .put("vm.add-device", parsing: deviceConfig, what: "device") { text in
            let config = try DeviceConfig.parse(text)
            try refuseDescriptors(option: "fd", if: config.fd != nil)
            return config
        }
    }
}

struct AddUserDevice: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-user-device", abstract: "Add userspace device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "socket=<socket_path>,id=<device_id>,…") var deviceConfig: String
    func request() throws -> APIRequest {
        try .put("vm.add-user-device", parsing: deviceConfig, what: "user device", UserDeviceConfig.parse)
    }
}

struct AddGenericVhostUser: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "add-generic-vhost-user",
                                                    abstract: "Add generic vhost-user device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "socket=<socket_path>,device_type=<type>,queue_sizes=<list>,…") var config: String
    func request() throws -> APIRequest {
        try .put("vm.add-generic-vhost-user", parsing: config, what: "generic vhost-user", GenericVhostUserConfig.parse)
    }
}

struct RemoveDevice: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "remove-device", abstract: "Remove VFIO and PCI device")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "<device_id>") var id: String
    func request() throws -> APIRequest { try .put("vm.remove-device", VmRemoveDevice(id: id)) }
}
