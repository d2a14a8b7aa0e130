import API
import Config
import Foundation
import TestSupport
import VMM
import XCTest

/// docs/openapi.json stays true to the server: its operations are the router's, the bodies our encoders
/// write fit the schemas the paths name, and each schema's `required` and `default` are what our decoders
/// require and fill in. A type or route changed without the document fails here.
final class OpenAPIDocumentTests: XCTestCase {
    private var document: OpenAPIDocument!

    override func setUpWithError() throws {
        document = try OpenAPIDocument.load()
    }

    func testOperationsAreTheRoutes() {
        XCTAssertEqual(document.operations, Set(APIServer.routes.map { "\($0.value) \($0.key)" }))
    }

    /// A request body is declared, and required, exactly where the endpoint needs one.
    func testRequestBodiesAreTheEndpointsBodies() {
        for endpoint in APIEndpoint.all {
            let body = document.operation(endpoint.name)?["requestBody"]
            XCTAssertEqual(body?["required"], endpoint.body == .required ? .bool(true) : nil, endpoint.name)
        }
    }

    func testRequestBodiesFitTheirSchemas() throws {
        let requests: [(String, any Encodable)] = [
            ("vm.create", try Self.realisticConfig()),
            ("vm.add-disk", try DiskConfig.parse("path=/img/data.qcow2,direct=on,num_queues=2,image_type=qcow2,lock_granularity=full,sparse=off")),
            ("vm.add-net", try NetConfig.parse("tap=tap1,mac=12:34:56:78:9a:bd,vhost_mode=server,ops_size=5,ops_refill_time=10")),
            ("vm.add-vsock", try VsockConfig.parse("cid=4,socket=/tmp/v.sock,id=vsock1")),
            ("vm.add-fs", try FsConfig.parse("tag=share,socket=/tmp/fs.sock,num_queues=1,queue_size=512,id=fs1")),
            ("vm.add-pmem", try PmemConfig.parse("file=/img/pmem,size=128M,discard_writes=on,iommu=on")),
            ("vm.add-device", try DeviceConfig.parse("path=/sys/bus/pci/devices/0000:01:00.0,x_exclude_mmap_bars=[0,2]")),
            ("vm.add-vdpa", try VdpaConfig.parse("path=/dev/vhost-vdpa-0,num_queues=2,id=vdpa0")),
            ("vm.add-user-device", try UserDeviceConfig.parse("socket=/tmp/user.sock,id=user0,pci_segment=1")),
            ("vm.remove-device", VmRemoveDevice(id: "disk0")),
            ("vm.resize", VmResize(desired_vcpus: 2)),
            ("vm.resize-zone", VmResizeZone(id: "mem0", desired_ram: 1 << 30)),
            ("vm.resize-disk", VmResizeDisk(id: "disk0", desired_size: 1 << 32)),
            ("vm.snapshot", VmSnapshotConfig(destination_url: "file:///tmp/snap", durable: false)),
            ("vm.coredump", VmCoredumpData(destination_url: "file:///tmp/core")),
            ("vm.restore", try RestoreConfig.parse("source_url=file:///tmp/snap,prefault=on,memory_restore_mode=ondemand,"
                + "net_fds=[net0@[3,4]],vfio_fds=[vfio0@5],iommufd_fd=6,resume=true,zone_updates=[mem0@1]")),
            ("vm.receive-migration", try ReceiveMigrationData.parse("receiver_url=tcp:0.0.0.0:6000,tls_dir=/etc/tls,"
                + "memory_mode=postcopy,vfio_fds=[vfio0@5],iommufd_fd=6,zone_updates=[mem0@1]")),
            ("vm.send-migration", try Self.sendMigrationWithEverything()),
        ]
        for (endpoint, body) in requests {
            let schema = try XCTUnwrap(document.requestSchema(endpoint), endpoint)
            XCTAssertEqual(document.problems(try .parse(APIJSON.encode(body)), against: schema, at: endpoint), [])
        }
    }

    /// Responses as the server writes them (`APIJSON.body`).
    func testResponseBodiesFitTheirSchemas() throws {
        let responses: [(String, String, VmmResponse)] = [
            ("vmm.ping", "200", .ping(VmmPingResponse(build_version: BuildInfo.version, version: BuildInfo.version,
                                                      pid: Int64(getpid()), features: ["kvm", "dbus_api"]))),
            ("vm.info", "200", .info(try Self.runningInfo())),
            ("vm.counters", "200", .counters(["_disk0": ["read_bytes": 4096, "write_ops": 3], "_net0": ["rx_bytes": 1 << 40]])),
            ("vm.add-disk", "200", .deviceAdded(PciDeviceInfo(id: "_disk1", bdf: "0000:00:06.0"))),
            ("vm.migration-progress", "200", .migrationProgress(Self.failedMigration())),
        ]
        for (endpoint, status, response) in responses {
            let schema = try XCTUnwrap(document.responseSchema(endpoint, status), endpoint)
            let body = try XCTUnwrap(APIJSON.body(of: response))
            XCTAssertEqual(document.problems(try .parse(body), against: schema, at: endpoint), [])
        }
    }

    func testRequiredAndDefaultsAreTheDecoders() throws {
        try checkRequiredAndDefaults(VmConfig.self, "VmConfig", sample: Self.realisticConfig())
        try checkRequiredAndDefaults(CpusConfig.self, "CpusConfig", sample: Self.realisticConfig().cpus)
        try checkRequiredAndDefaults(MemoryConfig.self, "MemoryConfig", sample: Self.realisticConfig().memory)
        try checkRequiredAndDefaults(DiskConfig.self, "DiskConfig", sample: Self.realisticConfig().disks![0])
        try checkRequiredAndDefaults(NetConfig.self, "NetConfig", sample: Self.realisticConfig().net![0])
        try checkRequiredAndDefaults(VsockConfig.self, "VsockConfig", sample: Self.realisticConfig().vsock!)
        try checkRequiredAndDefaults(RngConfig.self, "RngConfig", sample: Self.realisticConfig().rng)
        try checkRequiredAndDefaults(ConsoleConfig.self, "ConsoleConfig", sample: Self.realisticConfig().console)
        try checkRequiredAndDefaults(PlatformConfig.self, "PlatformConfig", sample: Self.realisticConfig().platform!)
        try checkRequiredAndDefaults(SendMigrationData.self, "SendMigrationData", sample: Self.sendMigrationWithEverything())
        try checkRequiredAndDefaults(ReceiveMigrationData.self, "ReceiveMigrationData",
                                     sample: ReceiveMigrationData.parse("receiver_url=unix:/tmp/mig.sock,zone_updates=[mem0@1]"))
        try checkRequiredAndDefaults(RestoreConfig.self, "RestoreConfig",
                                     sample: RestoreConfig.parse("source_url=file:///tmp/snap,net_fds=[net0@[3]],resume=on"))
        try checkRequiredAndDefaults(VmSnapshotConfig.self, "VmSnapshotConfig",
                                     sample: VmSnapshotConfig(destination_url: "file:///tmp/snap", durable: false))
        try checkRequiredAndDefaults(MigrationProgress.self, "MigrationProgress", sample: Self.failedMigration())
        try checkRequiredAndDefaults(VmInfo.self, "VmInfo", sample: Self.runningInfo())
    }

    /// The sample cut down to the schema's required properties decodes, and fails without any one of them;
    /// what it decodes to, written again, fits the schema (its `null`s included) and has each documented
    /// default where the encoder writes the field.
    private func checkRequiredAndDefaults<T: Codable>(_ type: T.Type, _ name: String, sample: T,
                                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let schema = document.resolved(document.schema(named: name))
        let required = schema["required"]?.strings ?? []
        let minimal = try JSONValue.parse(APIJSON.encode(sample)).fields.filter { required.contains($0.key) }
        XCTAssertEqual(Set(minimal.keys), Set(required), "\(name): the sample lacks required fields", file: file, line: line)
        let decoded: T
        switch APIJSON.decode(T.self, from: try JSONValue.object(minimal).data) {
        case let .success(value): decoded = value
        case let .failure(failure):
            return XCTFail("\(name): only the required fields do not decode: \(failure.detail)", file: file, line: line)
        }
        for key in required {
            let body = try JSONValue.object(minimal.filter { $0.key != key }).data
            if case .success = APIJSON.decode(T.self, from: body) {
                XCTFail("\(name): decodes without required `\(key)`", file: file, line: line)
            }
        }
        let written = try JSONValue.parse(APIJSON.encode(decoded)).fields
        XCTAssertEqual(document.problems(.object(written), against: .object(schema), at: name), [], file: file, line: line)
        for (key, property) in schema["properties"]?.fields ?? [:] {
            guard let expected = document.resolved(property)["default"], let actual = written[key] else { continue }
            XCTAssertEqual(actual, expected, "\(name).\(key): the decoder's default is not the documented one", file: file, line: line)
        }
    }

    /// The shared full config plus tap descriptors, which a JSON round trip cannot keep (they decode as -1).
    private static func realisticConfig() throws -> VmConfig {
        var config = try VmConfig.everything()
        config.net?[0].fds = [3, 4]
        return config
    }

    /// Every field set, our extensions included, with values that differ from the defaults.
    private static func sendMigrationWithEverything() throws -> SendMigrationData {
        var data = try SendMigrationData.parse("destination_url=tcp:10.0.0.2:6000,downtime_ms=500,"
            + "timeout_s=60,timeout_strategy=ignore,connections=4,auto_converge=off,compression=zstd,compression_level=3")
        data.preserve_source = true
        data.tls_dir = "/etc/tls"
        data.memory_mode = .Postcopy
        return data
    }

    /// What `vm.info` answers for a booted VM: a device tree with every kind of resource.
    private static func runningInfo() throws -> VmInfo {
        let disk = DeviceNode(id: "_disk0", resources: [
            .pciBar(index: 0, base: 0xe000_0000, size: 0x8_0000, type: .Mmio64, prefetchable: false),
            .msiIrq(type: .PciMsix, base: 24, size: 2),
            .mmioAddressRange(base: 0xd000_0000, size: 0x1000),
            .kvmMemSlot(3),
        ], parent: "_pci0", pci_bdf: "0000:00:05.0")
        let serial = DeviceNode(id: "__serial", resources: [.pioAddressRange(base: 0x3f8, size: 8), .legacyIrq(4)])
        let net = DeviceNode(id: "_net0", resources: [.macAddress("12:34:56:78:9a:bc")])
        let pci = DeviceNode(id: "_pci0", children: ["_disk0"])
        return VmInfo(config: try realisticConfig(), state: .Running, memory_actual_size: 1 << 30,
                      device_tree: [disk.id: disk, serial.id: serial, net.id: net, pci.id: pci])
    }

    private static func failedMigration() -> MigrationProgress {
        var progress = MigrationProgress(role: .source, phase: .failed, url: "tcp:10.0.0.2:6000")
        progress.iteration = 3
        progress.memory_bytes = 1 << 30
        progress.transferred_bytes = 700 << 20
        progress.data_pages = 150_000
        progress.zero_pages = 100_000
        progress.dirty_pages = 2_000
        progress.dirty_rate_bytes_per_s = 1.5e8
        progress.bandwidth_bytes_per_s = 1.1e9
        progress.estimated_downtime_ms = 7.25
        progress.throttle_percent = 30
        progress.downtime_limit_ms = 300
        progress.downtime_ms = 12.5
        progress.elapsed_ms = 2_345.5
        progress.error = "cancelled by vm.cancel-migration"
        return progress
    }
}
