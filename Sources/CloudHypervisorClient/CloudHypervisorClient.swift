import Config
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client of Cloud Hypervisor's REST API on its UNIX socket (`--api-socket`): one typed async method per
/// endpoint, JSON bodies as CH. Each call opens its own connection, so a client can be shared freely and a
/// long call (receive-migration) does not hold up others.
public struct CloudHypervisorClient: Sendable {
    public let socketPath: String
    private let group: any EventLoopGroup

    public init(socketPath: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.socketPath = socketPath
        self.group = group
    }

    // MARK: VMM

    public func ping() async throws -> VmmPingResponse { try await get("vmm.ping") }

    public func shutdownVmm() async throws { try await put("vmm.shutdown") }

    // MARK: VM lifecycle

    public func create(_ config: VmConfig) async throws { try await put("vm.create", config) }

    public func boot() async throws { try await put("vm.boot") }

    public func delete() async throws { try await put("vm.delete") }

    public func info() async throws -> VmInfo { try await get("vm.info") }

    public func counters() async throws -> VmCounters { try await get("vm.counters") }

    public func pause() async throws { try await put("vm.pause") }

    public func resume() async throws { try await put("vm.resume") }

    public func shutdown() async throws { try await put("vm.shutdown") }

    public func reboot() async throws { try await put("vm.reboot") }

    public func powerButton() async throws { try await put("vm.power-button") }

    public func nmi() async throws { try await put("vm.nmi") }

    // MARK: Resizing

    public func resize(_ request: VmResize) async throws { try await put("vm.resize", request) }

    public func resizeZone(_ request: VmResizeZone) async throws { try await put("vm.resize-zone", request) }

    public func resizeDisk(_ request: VmResizeDisk) async throws { try await put("vm.resize-disk", request) }

    // MARK: Devices. Each `add*` returns the new device's PCI address when the VM is running (hot-plug) and
    // nil when it only joined the configuration of a VM not yet booted (CH answers 204 then).

    public func addDisk(_ config: DiskConfig) async throws -> PciDeviceInfo? { try await add("vm.add-disk", config) }

    public func addNet(_ config: NetConfig) async throws -> PciDeviceInfo? { try await add("vm.add-net", config) }

    public func addFs(_ config: FsConfig) async throws -> PciDeviceInfo? { try await add("vm.add-fs", config) }

    public func addPmem(_ config: PmemConfig) async throws -> PciDeviceInfo? { try await add("vm.add-pmem", config) }

    public func addVsock(_ config: VsockConfig) async throws -> PciDeviceInfo? { try await add("vm.add-vsock", config) }

    public func addVdpa(_ config: VdpaConfig) async throws -> PciDeviceInfo? { try await add("vm.add-vdpa", config) }

    public func addDevice(_ config: DeviceConfig) async throws -> PciDeviceInfo? { try await add("vm.add-device", config) }

    public func addUserDevice(_ config: UserDeviceConfig) async throws -> PciDeviceInfo? {
        try await add("vm.add-user-device", config)
    }

    public func addGenericVhostUser(_ config: GenericVhostUserConfig) async throws -> PciDeviceInfo? {
        try await add("vm.add-generic-vhost-user", config)
    }

    public func removeDevice(id: String) async throws { try await put("vm.remove-device", VmRemoveDevice(id: id)) }

    // MARK: Snapshot, restore, migration, dump

    /// `destinationURL` is `file:///existing/dir`; the VM must be paused.
    public func snapshot(destinationURL: String) async throws {
        try await put("vm.snapshot", VmSnapshotConfig(destination_url: destinationURL))
    }

    public func coredump(destinationURL: String) async throws {
        try await put("vm.coredump", VmCoredumpData(destination_url: destinationURL))
    }

    public func restore(_ config: RestoreConfig) async throws { try await put("vm.restore", config) }

    public func sendMigration(_ data: SendMigrationData) async throws { try await put("vm.send-migration", data) }

    /// Returns when the migration has completed or failed (CH blocks the call until then).
    public func receiveMigration(_ data: ReceiveMigrationData) async throws {
        try await put("vm.receive-migration", data)
    }

    // MARK: Raw access

    /// Sends `method` to `/api/v1/<endpoint>` with `body` as JSON and returns the status and body whatever the
    /// status is; throws only when the exchange itself fails.
    public func send(method: String, path endpoint: String, body: Data? = nil) async throws -> (status: Int, body: Data) {
        let reply = try await UnixHTTPTransport.exchange(socketPath: socketPath, group: group, method: HTTPMethod(rawValue: method),
                                                         uri: Self.uri(endpoint), body: body.map { [UInt8]($0) })
        return (reply.status, Data(reply.body))
    }

    /// Like `send`, but an error status becomes `CloudHypervisorClientError.http` with CH's error chain.
    public func request(method: String, path endpoint: String, body: Data? = nil) async throws -> Data {
        let (status, reply) = try await send(method: method, path: endpoint, body: body)
        guard (200..<300).contains(status) else { throw Self.httpError(status: status, body: reply) }
        return reply
    }

    // MARK: Plumbing

    /// `vm.info` → `/api/v1/vm.info`; a path starting with `/` is taken as is.
    static func uri(_ endpoint: String) -> String { endpoint.hasPrefix("/") ? endpoint : "/api/v1/\(endpoint)" }

    /// CH's error body is a JSON array of strings, outermost error first.
    static func httpError(status: Int, body: Data) -> CloudHypervisorClientError {
        if let chain = try? JSONDecoder().decode([String].self, from: body) {
            return .http(status: status, chain: chain)
        }
        let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return .http(status: status, chain: text.isEmpty ? [] : [text])
    }

    private func get<Reply: Decodable>(_ endpoint: String) async throws -> Reply {
        let body = try await request(method: "GET", path: endpoint)
        return try Self.decode(Reply.self, from: body, endpoint: endpoint)
    }

    private func put(_ endpoint: String) async throws {
        _ = try await request(method: "PUT", path: endpoint)
    }

    private func put(_ endpoint: String, _ value: some Encodable) async throws {
        _ = try await request(method: "PUT", path: endpoint, body: try JSONEncoder().encode(value))
    }

    private func add(_ endpoint: String, _ config: some Encodable) async throws -> PciDeviceInfo? {
        let body = try await request(method: "PUT", path: endpoint, body: try JSONEncoder().encode(config))
        return body.isEmpty ? nil : try Self.decode(PciDeviceInfo.self, from: body, endpoint: endpoint)
    }

    private static func decode<T: Decodable>(_ type: T.Type, from body: Data, endpoint: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: body)
        } catch let error as DecodingError {
            throw CloudHypervisorClientError.badResponse("\(endpoint): \(error.summary)")
        }
    }
}
