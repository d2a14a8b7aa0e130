import Foundation
import VMM

/// One method of `org.cloudhypervisor.DBusApi1`: a shared `APIEndpoint` under CH's D-Bus name, with CH's
/// D-Bus signature: the body as one JSON string argument, and whether the reply carries the response body.
struct DBusMethod: Sendable {
    static let interface = "org.cloudhypervisor.DBusApi1"

    let endpoint: APIEndpoint
    /// `VmAddDisk` for `vm.add-disk`.
    let name: String
    /// The JSON argument's name in the introspection data (CH's parameter names); nil: no argument.
    let argument: String?
    /// Returns one string ("s"): the REST response body, "" where REST answers 204 without one.
    let returnsString: Bool

    var inSignature: String { argument == nil ? "" : "s" }

    func command(from call: Message) -> Result<VmmCommand, APIDecodingFailure> {
        endpoint.command(argument == nil ? nil : Data((call.firstString ?? "").utf8))
    }

    /// Keyed by name.
    static let named: [String: DBusMethod] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// CH's methods (vmm/src/api/dbus/mod.rs) with the same signatures, plus `VmNmi` and `VmResizeDisk`,
    /// which CH serves over REST only. CH's `VmAddGenericVhostUser` is absent, as is its REST endpoint.
    static let all: [DBusMethod] = [
        method("vmm.ping", returnsString: true),
        method("vmm.shutdown"),

        method("vm.add-device", "device_config", returnsString: true),
        method("vm.add-disk", "disk_config", returnsString: true),
        method("vm.add-fs", "fs_config", returnsString: true),
        method("vm.add-net", "net_config", returnsString: true),
        method("vm.add-pmem", "pmem_config", returnsString: true),
        method("vm.add-user-device", "vm_add_user_device", returnsString: true),
        method("vm.add-vdpa", "vdpa_config", returnsString: true),
        method("vm.add-vsock", "vsock_config", returnsString: true),
        method("vm.boot"),
        method("vm.cancel-migration"),
        method("vm.coredump", "vm_coredump_data"),
        method("vm.counters", returnsString: true),
        method("vm.create", "vm_config"),
        method("vm.delete"),
        method("vm.info", returnsString: true),
        method("vm.migration-progress", returnsString: true),
        method("vm.nmi"),
        method("vm.pause"),
        method("vm.power-button"),
        method("vm.reboot"),
        method("vm.receive-migration", "receive_migration_data"),
        method("vm.remove-device", "vm_remove_device"),
        method("vm.resize", "vm_resize"),
        method("vm.resize-disk", "vm_resize_disk"),
        method("vm.resize-zone", "vm_resize_zone"),
        method("vm.restore", "restore_config"),
        method("vm.resume"),
        method("vm.send-migration", "send_migration_data"),
        method("vm.shutdown"),
        method("vm.snapshot", "vm_snapshot_config"),
    ]

    /// An argument is given exactly where the endpoint requires a body.
    private static func method(_ endpoint: String, _ argument: String? = nil, returnsString: Bool = false) -> DBusMethod {
        guard let shared = APIEndpoint.named[endpoint], (shared.body == .required) == (argument != nil) else {
            preconditionFailure("D-Bus table out of step with APIEndpoint.all at \(endpoint)")
        }
        return DBusMethod(endpoint: shared, name: dbusName(endpoint), argument: argument, returnsString: returnsString)
    }

    /// CH's D-Bus names: the REST name's words capitalised and run together.
    private static func dbusName(_ endpoint: String) -> String {
        endpoint.split(whereSeparator: { $0 == "." || $0 == "-" }).map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}
