import ArgumentParser
import Config

// Resizing, snapshot/restore, migration and core dumps.

struct Resize: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Resize the VM")
    @OptionGroup var global: GlobalOptions
    @Option(help: "New balloon size in bytes (supports K/M/G suffix)") var balloon: String?
    @Option(help: "New vCPUs count") var cpus: String?
    @Option(help: "New memory size in bytes (supports K/M/G suffix)") var memory: String?

    func request() throws -> APIRequest {
        let vcpus = try cpus.map { text in
            guard let n = UInt32(text) else { throw CommandFailure(["Error parsing CPU count", "invalid number '\(text)'"]) }
            return n
        }
        return try .put("vm.resize", VmResize(desired_vcpus: vcpus,
                                              desired_ram: try memory.map { try byteSize($0, "Error parsing memory size") },
                                              desired_balloon: try balloon.map { try byteSize($0, "Error parsing balloon size") }))
    }
}

struct ResizeDisk: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "resize-disk", abstract: "Resize an attached disk")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Disk identifier") var disk: String
    @Option(help: "New disk size") var size: String

    func request() throws -> APIRequest {
        try .put("vm.resize-disk", VmResizeDisk(id: disk, desired_size: try byteSize(size, "Invalid disk size")))
    }
}

struct ResizeZone: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "resize-zone", abstract: "Resize a memory zone")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Memory zone identifier") var id: String
    @Option(help: "New memory zone size in bytes (supports K/M/G suffix)") var size: String

    func request() throws -> APIRequest {
        try .put("vm.resize-zone", VmResizeZone(id: id, desired_ram: try byteSize(size, "Error parsing memory size")))
    }
}

struct Snapshot: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Create a snapshot from VM")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "<destination_url>, e.g. file:///existing/dir") var snapshotConfig: String
    func request() throws -> APIRequest { try .put("vm.snapshot", VmSnapshotConfig(destination_url: snapshotConfig)) }
}

struct Restore: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Restore VM from a snapshot")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "source_url=<source_url>,prefault=on|off,memory_restore_mode=copy|ondemand,resume=true|false,…")
    var restoreConfig: String
    func request() throws -> APIRequest {
        try .put("vm.restore", parsing: restoreConfig, what: "restore") { text in
            let config = try RestoreConfig.parse(text)
            try refuseDescriptors(option: "net_fds", if: config.net_fds != nil)
            try refuseDescriptors(option: "vfio_fds", if: config.vfio_fds != nil)
            try refuseDescriptors(option: "iommufd_fd", if: config.iommufd_fd != nil)
            return config
        }
    }
}

struct Coredump: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Create a coredump from VM")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "<file_path>") var coredumpConfig: String
    func request() throws -> APIRequest { try .put("vm.coredump", VmCoredumpData(destination_url: coredumpConfig)) }
}

struct SendMigration: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "send-migration", abstract: "Initiate a VM migration")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Same as local=on (the syntax of CH before v52)") var local = false
    @Argument(help: "destination_url=<url>[,local=on|off,downtime_ms=<ms>,timeout_s=<s>,timeout_strategy=cancel|ignore,compression=none|zstd,compression_level=<n>,…]")
    var sendMigrationConfig: String

    func request() throws -> APIRequest {
        try .put("vm.send-migration", parsing: local ? sendMigrationConfig + ",local=on" : sendMigrationConfig,
                 what: "send migration configuration", SendMigrationData.parse)
    }
}

struct ReceiveMigration: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "receive-migration", abstract: "Receive a VM migration")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "<receiver_url> or receiver_url=<url>[,tls_dir=<path>,memory_mode=precopy|postcopy,…]")
    var receiveMigrationConfig: String

    func request() throws -> APIRequest {
        try .put("vm.receive-migration", parsing: receiveMigrationConfig, what: "receive migration configuration") { text in
            let data = try ReceiveMigrationData.parse(text)
            try refuseDescriptors(option: "vfio_fds", if: data.vfio_fds != nil)
            try refuseDescriptors(option: "iommufd_fd", if: data.iommufd_fd != nil)
            return data
        }
    }
}

/// A byte size with K/M/G suffix, or a failure headed by `context` as CH words it.
private func byteSize(_ text: String, _ context: String) throws -> UInt64 {
    guard let n = OptionParser.parseSize(text) else { throw CommandFailure([context, "Invalid value: \(text)"]) }
    return n
}
