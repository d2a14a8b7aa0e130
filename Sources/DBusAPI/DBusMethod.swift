import Config
import VMM

/// One method of `org.cloudhypervisor.DBusApi1`: a REST endpoint under CH's D-Bus name, with its
/// argument (the REST body, as a JSON string) and whether it returns the REST response body.
struct DBusMethod: Sendable {
    enum Input: Sendable {
        /// No argument: the REST endpoint takes no body (or ignores it).
        case none(VmmCommand)
        /// One string, the endpoint's JSON body; `argument` names it in the introspection data (CH's
        /// parameter names).
        case json(argument: String, decode: @Sendable (String) throws(DBusFailure) -> VmmCommand)
    }

    static let interface = "org.cloudhypervisor.DBusApi1"

    let name: String
    let input: Input
    /// Returns one string ("s"): the REST response body, "" where REST answers 204 without one.
    let returnsString: Bool

    var inSignature: String {
        if case .json = input { "s" } else { "" }
    }

    func command(from call: Message) throws(DBusFailure) -> VmmCommand {
        switch input {
        case let .none(command): command
        case let .json(_, decode): try decode(call.firstString ?? "")
        }
    }

    /// Keyed by name.
    static let named: [String: DBusMethod] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// CH's methods (vmm/src/api/dbus/mod.rs) with the same signatures, plus `VmNmi` and `VmResizeDisk`,
    /// which CH serves over REST only. CH's `VmAddGenericVhostUser` is absent, as is its REST endpoint.
    static let all: [DBusMethod] = [
        action("VmmPing", .ping, returnsString: true),
        action("VmmShutdown", .shutdownVmm),

        json("VmAddDevice", "device_config", returnsString: true) { .addDevice(.device($0)) },
        json("VmAddDisk", "disk_config", returnsString: true) { .addDevice(.disk($0)) },
        json("VmAddFs", "fs_config", returnsString: true) { .addDevice(.fs($0)) },
        json("VmAddNet", "net_config", returnsString: true) { .addDevice(.net($0)) },
        json("VmAddPmem", "pmem_config", returnsString: true) { .addDevice(.pmem($0)) },
        json("VmAddUserDevice", "vm_add_user_device", returnsString: true) { .addDevice(.userDevice($0)) },
        json("VmAddVdpa", "vdpa_config", returnsString: true) { .addDevice(.vdpa($0)) },
        json("VmAddVsock", "vsock_config", returnsString: true) { .addDevice(.vsock($0)) },
        action("VmBoot", .boot),
        json("VmCoredump", "vm_coredump_data", VmmCommand.coredump),
        action("VmCounters", .counters, returnsString: true),
        json("VmCreate", "vm_config", VmmCommand.create),
        action("VmDelete", .delete),
        action("VmInfo", .info, returnsString: true),
        action("VmNmi", .nmi),
        action("VmPause", .pause),
        action("VmPowerButton", .powerButton),
        action("VmReboot", .reboot),
        json("VmReceiveMigration", "receive_migration_data", VmmCommand.receiveMigration),
        json("VmRemoveDevice", "vm_remove_device", VmmCommand.removeDevice),
        json("VmResize", "vm_resize", VmmCommand.resize),
        json("VmResizeDisk", "vm_resize_disk", VmmCommand.resizeDisk),
        json("VmResizeZone", "vm_resize_zone", VmmCommand.resizeZone),
        json("VmRestore", "restore_config", VmmCommand.restore),
        action("VmResume", .resume),
        json("VmSendMigration", "send_migration_data", VmmCommand.sendMigration),
        action("VmShutdown", .shutdown),
        json("VmSnapshot", "vm_snapshot_config", VmmCommand.snapshot),
    ]

    private static func action(_ name: String, _ command: VmmCommand, returnsString: Bool = false) -> DBusMethod {
        DBusMethod(name: name, input: .none(command), returnsString: returnsString)
    }

    private static func json<Body: Decodable & SendableMetatype>(
        _ name: String, _ argument: String, returnsString: Bool = false,
        _ command: @escaping @Sendable (Body) -> VmmCommand
    ) -> DBusMethod {
        DBusMethod(name: name, input: .json(argument: argument, decode: { text throws(DBusFailure) in
            command(try JSONText.decode(text))
        }), returnsString: returnsString)
    }
}
