import CloudHypervisorClient
import Config
import Foundation
import XCTest

/// Every client method against a stub of CH's server: the right method, path and JSON body go out, and CH's
/// answers (200 with JSON, 204, error chains) come back typed.
final class ClientMethodTests: XCTestCase {
    /// Runs `body` with a client talking to a fresh stub server that answers with `respond`.
    private func withServer(_ respond: @escaping @Sendable (RecordedRequest) -> CannedResponse = { _ in .noContent },
                            _ body: (CloudHypervisorClient, StubCHServer) async throws -> Void) async throws {
        let server = try StubCHServer(respond: respond)
        defer { server.stop() }
        try await body(CloudHypervisorClient(socketPath: server.socketPath), server)
    }

    func testPing() async throws {
        let answer = #"{"build_version":"v54.0.0","version":"54.0.0","pid":42,"features":["kvm"]}"#
        try await withServer({ _ in .ok(answer) }) { client, server in
            let ping = try await client.ping()
            XCTAssertEqual(ping, VmmPingResponse(build_version: "v54.0.0", version: "54.0.0", pid: 42, features: ["kvm"]))
            let request = try XCTUnwrap(server.requests.first)
            XCTAssertEqual(request.method, "GET")
            XCTAssertEqual(request.path, "/api/v1/vmm.ping")
            XCTAssertEqual(request.headers["host"], "localhost")
            XCTAssertTrue(request.body.isEmpty)
        }
    }

    func testBodylessCommandsSendPutWithZeroLength() async throws {
        let calls: [(String, @Sendable (CloudHypervisorClient) async throws -> Void)] = [
            ("vmm.shutdown", { try await $0.shutdownVmm() }), ("vm.boot", { try await $0.boot() }),
            ("vm.delete", { try await $0.delete() }), ("vm.pause", { try await $0.pause() }),
            ("vm.resume", { try await $0.resume() }), ("vm.shutdown", { try await $0.shutdown() }),
            ("vm.reboot", { try await $0.reboot() }), ("vm.power-button", { try await $0.powerButton() }),
            ("vm.nmi", { try await $0.nmi() }),
        ]
        try await withServer { client, server in
            for (_, call) in calls { try await call(client) }
            XCTAssertEqual(server.requests.map(\.path), calls.map { "/api/v1/\($0.0)" })
            for request in server.requests {
                XCTAssertEqual(request.method, "PUT")
                // CH's server reads a zero length as "no body"; a chunked body would be refused.
                XCTAssertEqual(request.headers["content-length"], "0")
                XCTAssertNil(request.headers["transfer-encoding"])
            }
        }
    }

    func testBodiesAreCHJSON() async throws {
        let disk = try DiskConfig.parse("path=/img,readonly=on")
        let restore = try RestoreConfig.parse("source_url=file:///snap,resume=true")
        let send = try SendMigrationData.parse("destination_url=unix:/tmp/m,local=on")
        let calls: [(String, String, @Sendable (CloudHypervisorClient) async throws -> Void)] = [
            ("vm.create", #"{"memory":{"size":1073741824}}"#, { _ = try await $0.create(VmConfig(memory: MemoryConfig(size: 1 << 30))) }),
            ("vm.resize", #"{"desired_vcpus":4,"desired_ram":null,"desired_balloon":null}"#,
             { try await $0.resize(VmResize(desired_vcpus: 4)) }),
            ("vm.resize-zone", #"{"id":"mem0","desired_ram":1024}"#, { try await $0.resizeZone(VmResizeZone(id: "mem0", desired_ram: 1024)) }),
            ("vm.resize-disk", #"{"id":"disk0","desired_size":2048}"#, { try await $0.resizeDisk(VmResizeDisk(id: "disk0", desired_size: 2048)) }),
            ("vm.add-disk", String(decoding: try JSONEncoder().encode(disk), as: UTF8.self), { _ = try await $0.addDisk(disk) }),
            ("vm.add-net", #"{"tap":"tap0"}"#, { _ = try await $0.addNet(NetConfig(tap: "tap0")) }),
            ("vm.add-fs", #"{"tag":"t","socket":"/s"}"#, { _ = try await $0.addFs(FsConfig(tag: "t", socket: "/s")) }),
            ("vm.add-pmem", #"{"file":"/p"}"#, { _ = try await $0.addPmem(PmemConfig(file: "/p")) }),
            ("vm.add-vsock", #"{"cid":3,"socket":"/v"}"#, { _ = try await $0.addVsock(VsockConfig(cid: 3, socket: "/v")) }),
            ("vm.add-vdpa", #"{"path":"/dev/vhost-vdpa-0"}"#, { _ = try await $0.addVdpa(VdpaConfig(path: "/dev/vhost-vdpa-0")) }),
            ("vm.add-device", #"{"path":"/sys/d"}"#, { _ = try await $0.addDevice(DeviceConfig(path: "/sys/d")) }),
            ("vm.add-user-device", #"{"socket":"/u"}"#, { _ = try await $0.addUserDevice(UserDeviceConfig(socket: "/u")) }),
            ("vm.add-generic-vhost-user", #"{"socket":"/g","queue_sizes":[256],"device_type":26}"#,
             { _ = try await $0.addGenericVhostUser(GenericVhostUserConfig(socket: "/g", queue_sizes: [256], device_type: 26)) }),
            ("vm.remove-device", #"{"id":"_disk0"}"#, { try await $0.removeDevice(id: "_disk0") }),
            ("vm.snapshot", #"{"destination_url":"file:///snap"}"#, { try await $0.snapshot(destinationURL: "file:///snap") }),
            ("vm.coredump", #"{"destination_url":"file:///core"}"#, { try await $0.coredump(destinationURL: "file:///core") }),
            ("vm.restore", String(decoding: try JSONEncoder().encode(restore), as: UTF8.self), { try await $0.restore(restore) }),
            ("vm.send-migration", String(decoding: try JSONEncoder().encode(send), as: UTF8.self), { try await $0.sendMigration(send) }),
            ("vm.receive-migration", #"{"receiver_url":"unix:/tmp/m"}"#,
             { try await $0.receiveMigration(ReceiveMigrationData(receiver_url: "unix:/tmp/m")) }),
        ]
        try await withServer { client, server in
            for (_, _, call) in calls { try await call(client) }
            XCTAssertEqual(server.requests.count, calls.count)
            for (request, (endpoint, expected, _)) in zip(server.requests, calls) {
                XCTAssertEqual(request.method, "PUT", endpoint)
                XCTAssertEqual(request.path, "/api/v1/\(endpoint)")
                XCTAssertEqual(request.headers["content-type"], "application/json", endpoint)
                XCTAssertEqual(request.headers["content-length"], String(request.body.count), endpoint)
                // The expected bodies list what matters; defaults the client adds are checked in ConfigTests.
                let sent = try XCTUnwrap(request.json, endpoint)
                let wanted = try JSONSerialization.jsonObject(with: Data(expected.utf8))
                XCTAssertTrue(jsonContains(sent, wanted), "\(endpoint): \(sent) lacks \(expected)")
            }
        }
    }

    func testAddReturnsTheHotPluggedDeviceOrNilBeforeBoot() async throws {
        try await withServer({ request in
            request.path.hasSuffix("add-disk") ? .ok(#"{"id":"_disk0","bdf":"0000:00:06.0"}"#) : .noContent
        }) { client, _ in
            let plugged = try await client.addDisk(DiskConfig(path: "/d"))
            XCTAssertEqual(plugged, PciDeviceInfo(id: "_disk0", bdf: "0000:00:06.0"))
            let added = try await client.addNet(NetConfig())
            XCTAssertNil(added)
        }
    }

    func testInfoDecodesCHAnswer() async throws {
        let answer = """
            {"config":{"cpus":{"boot_vcpus":2,"max_vcpus":2,"kvm_hyperv":false,"max_phys_bits":46,"features":{"amx":false},
             "nested":true,"core_scheduling":"Vm","profile":"Host"},"memory":{"size":536870912,"mergeable":false,
             "hotplug_method":"Acpi","shared":false,"hugepages":false,"prefault":false,"reserve":false,"thp":true},
             "payload":{"kernel":"/k","cmdline":"console=ttyS0"},"disks":[{"path":"/d","readonly":false,"direct":false,
             "num_queues":1,"queue_size":128,"vhost_user":false,"id":"_disk0","pci_segment":0,"disable_io_uring":false,
             "disable_aio":false,"backing_files":false,"sparse":true,"image_type":"Raw","lock_granularity":"ByteRange"}],
             "rng":{"src":"/dev/urandom","pci_segment":0},"serial":{"mode":"Null"},"console":{"mode":"Tty","pci_segment":0},
             "debug_console":{"mode":"Off","iobase":233},"pvpanic":false,"iommu":false,"watchdog":false,
             "landlock_enable":false,"ivshmem":null},
             "state":"Running","memory_actual_size":536870912,
             "device_tree":{"_disk0":{"id":"_disk0","resources":[{"PciBar":{"index":0,"base":3891200000,"size":524288,
             "type_":"Mmio32","prefetchable":false}}],"parent":"__pci_segment_0","children":[],"pci_bdf":"0000:00:02.0"}}}
            """
        try await withServer({ _ in .ok(answer) }) { client, server in
            let info = try await client.info()
            XCTAssertEqual(info.state, .Running)
            XCTAssertEqual(info.config.cpus.boot_vcpus, 2)
            XCTAssertEqual(info.config.disks?.first?.image_type, .Raw)
            XCTAssertEqual(info.device_tree?["_disk0"]?.pci_bdf, "0000:00:02.0")
            XCTAssertEqual(server.requests.first?.method, "GET")
            XCTAssertEqual(server.requests.first?.path, "/api/v1/vm.info")
        }
    }

    func testCounters() async throws {
        try await withServer({ _ in .ok(#"{"_disk0":{"read_bytes":4096,"write_ops":2}}"#) }) { client, server in
            let counters = try await client.counters()
            XCTAssertEqual(counters["_disk0"]?["read_bytes"], 4096)
            XCTAssertEqual(server.requests.first?.path, "/api/v1/vm.counters")
        }
    }

    func testErrorBodyBecomesTheChain() async throws {
        let chain = ["Error from API", "The VM could not be paused", "Invalid transition: VM is Paused, cannot become Paused"]
        try await withServer({ _ in .error(500, chain) }) { client, _ in
            do {
                try await client.pause()
                XCTFail("pause succeeded")
            } catch let error as CloudHypervisorClientError {
                XCTAssertEqual(error, .http(status: 500, chain: chain))
                XCTAssertEqual("\(error)", "server responded with 500 InternalServerError: Error from API: "
                               + "The VM could not be paused: Invalid transition: VM is Paused, cannot become Paused")
            }
        }
    }

    func testNonJSONErrorBodyIsKeptAsText() async throws {
        try await withServer({ _ in CannedResponse(status: 404, body: "not here") }) { client, _ in
            do {
                _ = try await client.info()
                XCTFail("info succeeded")
            } catch let error as CloudHypervisorClientError {
                XCTAssertEqual(error, .http(status: 404, chain: ["not here"]))
            }
        }
    }

    func testMalformedAnswerIsABadResponse() async throws {
        try await withServer({ _ in .ok(#"{"state":"Running"}"#) }) { client, _ in
            do {
                _ = try await client.info()
                XCTFail("info succeeded")
            } catch let CloudHypervisorClientError.badResponse(detail) {
                XCTAssertTrue(detail.contains("config"), detail)
            }
        }
    }

    func testRawSendReturnsErrorStatusesWithoutThrowing() async throws {
        try await withServer({ _ in .error(404, ["Unknown route"]) }) { client, server in
            let (status, body) = try await client.send(method: "GET", path: "vm.nothing")
            XCTAssertEqual(status, 404)
            XCTAssertEqual(try JSONDecoder().decode([String].self, from: body), ["Unknown route"])
            XCTAssertEqual(server.requests.first?.path, "/api/v1/vm.nothing")
        }
    }

    func testMissingSocketIsCannotConnect() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID()).sock").path
        do {
            try await CloudHypervisorClient(socketPath: path).boot()
            XCTFail("boot succeeded")
        } catch let error as CloudHypervisorClientError {
            guard case let .cannotConnect(socketPath, reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(socketPath, path)
            XCTAssertEqual(reason, "No such file or directory")
            XCTAssertTrue("\(error)".contains("is cloud-hypervisor running with --api-socket?"))
        }
    }
}

/// Whether `actual` has every key of `expected` (recursively) with equal values.
func jsonContains(_ actual: Any, _ expected: Any) -> Bool {
    if let expected = expected as? [String: Any] {
        guard let actual = actual as? [String: Any] else { return false }
        return expected.allSatisfy { key, value in actual[key].map { jsonContains($0, value) } ?? false }
    }
    // Leaves compare by their JSON text (wrapped in an array, which JSONSerialization requires at the top).
    func text(_ value: Any) -> Data? { try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) }
    return text(actual) != nil && text(actual) == text(expected)
}
