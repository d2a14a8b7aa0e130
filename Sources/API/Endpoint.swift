import Config
import NIOHTTP1
import VMM

/// One row of Cloud Hypervisor's endpoint table: the only method it answers to, and how the request
/// body becomes a `VmmCommand`.
struct Endpoint: Sendable {
    enum Input: Sendable {
        /// No body allowed: CH answers 400 to one.
        case none(VmmCommand)
        /// A body is ignored, as CH does on its GET endpoints and vmm.shutdown.
        case ignored(VmmCommand)
        /// A JSON body is required and decoded into the command.
        case json(@Sendable (JSONBody) throws(APIFailure) -> VmmCommand)
    }

    let method: HTTPMethod
    let input: Input
    /// The answer to a success without data: 204, but vmm.shutdown's is a body-less 200.
    let emptySuccess: APIResponse

    static let prefix = "/api/v1/"

    /// Keyed by the name after `/api/v1/`.
    static let all: [String: Endpoint] = [
        "vmm.ping": get(.ping),
        "vmm.shutdown": Endpoint(method: .PUT, input: .ignored(.shutdownVmm), emptySuccess: .emptyOK),
        "vm.info": get(.info),
        "vm.counters": get(.counters),

        "vm.create": put(VmmCommand.create),
        "vm.boot": put(.boot),
        "vm.delete": put(.delete),
        "vm.pause": put(.pause),
        "vm.resume": put(.resume),
        "vm.shutdown": put(.shutdown),
        "vm.reboot": put(.reboot),
        "vm.power-button": put(.powerButton),
        "vm.nmi": put(.nmi),

        "vm.resize": put(VmmCommand.resize),
        "vm.resize-zone": put(VmmCommand.resizeZone),
        "vm.resize-disk": put(VmmCommand.resizeDisk),

        "vm.add-device": put { .addDevice(.device($0)) },
        "vm.add-disk": put { .addDevice(.disk($0)) },
        "vm.add-fs": put { .addDevice(.fs($0)) },
        "vm.add-pmem": put { .addDevice(.pmem($0)) },
        "vm.add-net": put { .addDevice(.net($0)) },
        "vm.add-vsock": put { .addDevice(.vsock($0)) },
        "vm.add-vdpa": put { .addDevice(.vdpa($0)) },
        "vm.add-user-device": put { .addDevice(.userDevice($0)) },
        "vm.remove-device": put(VmmCommand.removeDevice),

        "vm.snapshot": put(VmmCommand.snapshot),
        "vm.restore": put(VmmCommand.restore),
        "vm.coredump": put(VmmCommand.coredump),
        "vm.send-migration": put(VmmCommand.sendMigration),
        "vm.receive-migration": put(VmmCommand.receiveMigration),
    ]

    private static func get(_ command: VmmCommand) -> Endpoint {
        Endpoint(method: .GET, input: .ignored(command), emptySuccess: .noContent)
    }

    private static func put(_ command: VmmCommand) -> Endpoint {
        Endpoint(method: .PUT, input: .none(command), emptySuccess: .noContent)
    }

    private static func put<Body: Decodable & SendableMetatype>(_ command: @escaping @Sendable (Body) -> VmmCommand) -> Endpoint {
        Endpoint(method: .PUT, input: .json { body throws(APIFailure) in command(try body.decode()) },
                 emptySuccess: .noContent)
    }
}
