import Config
import VMM
import XCTest

/// Every endpoint of CH's table reaches the right `VmmCommand`, with its body decoded.
final class RoutingTests: XCTestCase {
    private struct Route {
        let method: String
        let endpoint: String
        let body: String?
        let matches: (VmmCommand) -> Bool
    }

    private let routes: [Route] = [
        Route(method: "GET", endpoint: "vmm.ping", body: nil) { if case .ping = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vmm.shutdown", body: nil) { if case .shutdownVmm = $0 { true } else { false } },
        Route(method: "GET", endpoint: "vm.info", body: nil) { if case .info = $0 { true } else { false } },
        Route(method: "GET", endpoint: "vm.counters", body: nil) { if case .counters = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.create",
              body: #"{"cpus":{"boot_vcpus":2,"max_vcpus":4},"memory":{"size":1073741824},"payload":{"kernel":"/k","cmdline":"console=ttyS0"}}"#) {
            guard case let .create(config) = $0 else { return false }
            return config.cpus.boot_vcpus == 2 && config.cpus.max_vcpus == 4 && config.memory.size == 1 << 30
                && config.payload?.kernel == "/k" && config.payload?.cmdline == "console=ttyS0"
        },
        Route(method: "PUT", endpoint: "vm.boot", body: nil) { if case .boot = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.delete", body: nil) { if case .delete = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.pause", body: nil) { if case .pause = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.resume", body: nil) { if case .resume = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.shutdown", body: nil) { if case .shutdown = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.reboot", body: nil) { if case .reboot = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.power-button", body: nil) { if case .powerButton = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.nmi", body: nil) { if case .nmi = $0 { true } else { false } },
        Route(method: "PUT", endpoint: "vm.resize", body: #"{"desired_vcpus":3,"desired_ram":2147483648}"#) {
            guard case let .resize(r) = $0 else { return false }
            return r.desired_vcpus == 3 && r.desired_ram == 2 << 30 && r.desired_balloon == nil
        },
        Route(method: "PUT", endpoint: "vm.resize-zone", body: #"{"id":"mem0","desired_ram":1048576}"#) {
            guard case let .resizeZone(r) = $0 else { return false }
            return r.id == "mem0" && r.desired_ram == 1 << 20
        },
        Route(method: "PUT", endpoint: "vm.resize-disk", body: #"{"id":"_disk0","desired_size":4096}"#) {
            guard case let .resizeDisk(r) = $0 else { return false }
            return r.id == "_disk0" && r.desired_size == 4096
        },
        Route(method: "PUT", endpoint: "vm.add-device", body: #"{"path":"/sys/bus/pci/devices/0000:01:00.0/","id":"vfio0"}"#) {
            guard case let .addDevice(.device(d)) = $0 else { return false }
            return d.path == "/sys/bus/pci/devices/0000:01:00.0/" && d.id == "vfio0"
        },
        Route(method: "PUT", endpoint: "vm.add-disk", body: #"{"path":"/img/disk.raw","readonly":true,"id":"d1"}"#) {
            guard case let .addDevice(.disk(d)) = $0 else { return false }
            return d.path == "/img/disk.raw" && d.readonly == true && d.id == "d1"
        },
        Route(method: "PUT", endpoint: "vm.add-fs", body: #"{"tag":"myfs","socket":"/tmp/virtiofs.sock"}"#) {
            guard case let .addDevice(.fs(f)) = $0 else { return false }
            return f.tag == "myfs" && f.socket == "/tmp/virtiofs.sock"
        },
        Route(method: "PUT", endpoint: "vm.add-pmem", body: #"{"file":"/img/pmem"}"#) {
            guard case let .addDevice(.pmem(p)) = $0 else { return false }
            return p.file == "/img/pmem"
        },
        Route(method: "PUT", endpoint: "vm.add-net", body: #"{"tap":"tap0","mac":"12:34:56:78:90:01"}"#) {
            guard case let .addDevice(.net(n)) = $0 else { return false }
            return n.tap == "tap0"
        },
        Route(method: "PUT", endpoint: "vm.add-vsock", body: #"{"cid":3,"socket":"/tmp/vsock"}"#) {
            guard case let .addDevice(.vsock(v)) = $0 else { return false }
            return v.cid == 3 && v.socket == "/tmp/vsock"
        },
        Route(method: "PUT", endpoint: "vm.add-vdpa", body: #"{"path":"/dev/vhost-vdpa-0"}"#) {
            guard case let .addDevice(.vdpa(v)) = $0 else { return false }
            return v.path == "/dev/vhost-vdpa-0"
        },
        Route(method: "PUT", endpoint: "vm.add-user-device", body: #"{"socket":"/tmp/user.sock"}"#) {
            guard case let .addDevice(.userDevice(u)) = $0 else { return false }
            return u.socket == "/tmp/user.sock"
        },
        Route(method: "PUT", endpoint: "vm.remove-device", body: #"{"id":"_disk0"}"#) {
            guard case let .removeDevice(r) = $0 else { return false }
            return r.id == "_disk0"
        },
        Route(method: "PUT", endpoint: "vm.snapshot", body: #"{"destination_url":"file:///snap"}"#) {
            guard case let .snapshot(s) = $0 else { return false }
            return s.destination_url == "file:///snap"
        },
        Route(method: "PUT", endpoint: "vm.coredump", body: #"{"destination_url":"file:///core"}"#) {
            guard case let .coredump(c) = $0 else { return false }
            return c.destination_url == "file:///core"
        },
        Route(method: "PUT", endpoint: "vm.restore", body: #"{"source_url":"file:///snap","prefault":true}"#) {
            guard case let .restore(r) = $0 else { return false }
            return r.source_url == "file:///snap" && r.prefault && !r.resume
        },
        Route(method: "PUT", endpoint: "vm.receive-migration", body: #"{"receiver_url":"unix:/tmp/mig"}"#) {
            guard case let .receiveMigration(m) = $0 else { return false }
            return m.receiver_url == "unix:/tmp/mig"
        },
        Route(method: "PUT", endpoint: "vm.send-migration", body: #"{"destination_url":"unix:/tmp/mig","local":true}"#) {
            guard case let .sendMigration(m) = $0 else { return false }
            return m.destination_url == "unix:/tmp/mig" && m.local && m.downtime_ms == 300
        },
    ]

    func testEveryEndpointReachesItsCommandWithTheDecodedBody() throws {
        let server = try TestServer()
        let connection = try server.connect()
        for (i, route) in routes.enumerated() {
            let reply = try connection.call(route.method, route.endpoint, body: route.body)
            XCTAssertLessThan(reply.status, 300, "\(route.endpoint): \(reply.status) \(reply.text)")
            let commands = server.vmm.commands
            XCTAssertEqual(commands.count, i + 1, route.endpoint)
            if let last = commands.last {
                XCTAssertTrue(route.matches(last), "\(route.endpoint) produced \(last)")
            }
        }
    }

    func testTheTableCoversCloudHypervisorsEndpoints() {
        // CH's routes (vm.add-generic-vhost-user aside: no VmmCommand for it yet).
        let ch = ["vmm.ping", "vmm.shutdown", "vm.create", "vm.boot", "vm.delete", "vm.info", "vm.counters",
                  "vm.pause", "vm.resume", "vm.shutdown", "vm.reboot", "vm.power-button", "vm.nmi", "vm.resize",
                  "vm.resize-zone", "vm.resize-disk", "vm.add-device", "vm.add-disk", "vm.add-fs", "vm.add-pmem",
                  "vm.add-net", "vm.add-vsock", "vm.add-vdpa", "vm.add-user-device", "vm.remove-device",
                  "vm.snapshot", "vm.coredump", "vm.restore", "vm.receive-migration", "vm.send-migration"]
        XCTAssertEqual(Set(routes.map(\.endpoint)), Set(ch))
    }

    func testAbsoluteFormTargetsAndQueriesRouteByPath() throws {
        let server = try TestServer()
        let connection = try server.connect()
        try connection.send("GET http://localhost/api/v1/vmm.ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(try connection.readReply().status, 200)
        try connection.send("GET /api/v1/vm.info?verbose=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertEqual(try connection.readReply().status, 200)
    }
}
