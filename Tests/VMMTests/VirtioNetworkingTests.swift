import Foundation
import TestSupport
import XCTest

/// virtio-net on a TAP, virtio-console and virtio-vsock as the checkguest sees them, and the errors a
/// user gets for a bad MAC, a missing CAP_NET_ADMIN and a vsock socket that is in use.
final class VirtioNetworkingTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    /// The guest's host-side peer on the TAP the VMM creates (the guest is 192.168.249.2).
    static let netOption = "ip=192.168.249.1,mask=255.255.255.0"

    /// One guest with all three devices from the CLI: ping through the TAP (the host kernel answers),
    /// console output in a file, vsock both ways, and counters.
    func testNetConsoleAndVsockFromTheCommandLine() throws {
        let dir = try ScratchDirectory("vnet")
        let vsock = dir.file("vsock"), consoleLog = dir.file("console.log"), socket = dir.file("api.sock")
        let echo = try UnixEchoListener(path: vsock + "_5000")
        defer { withExtendedLifetime(echo) {} }
        let guest = try GuestProcess.vmm(["--kernel", Paths.checkguest.path, "--cpus", "boot=2", "--memory", "size=256M",
                                          "--serial", "tty", "--console", "file=\(consoleLog)",
                                          "--net", Self.netOption + ",mac=52:54:00:12:34:56",
                                          "--vsock", "cid=3,socket=\(vsock)", "--api-socket", "path=\(socket)",
                                          "--cmdline", "workload=counter"])
        defer { guest.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        try guest.waitFor(#"^VSOCK cid=3\b"#, timeout: 20)
        try guest.waitFor(#"^NET ok rtt_us=\d+ mac=52:54:00:12:34:56"#, timeout: 10)

        // Host → guest: CONNECT to the guest's echo port.
        let client = try HybridVsockClient(socket: vsock, port: 1234)
        let message = Array("hybrid vsock from the host\n".utf8)
        XCTAssertEqual(try client.echo(message), message)
        // Guest → host: the guest connects to CID 2 port 5000, i.e. <socket>_5000.
        guest.send("vsockcheck 5000\n")
        try guest.waitFor(#"^VSOCK ok port=5000"#, timeout: 10)

        guest.send("vcon typed-on-the-serial-port\n")
        try guest.waitFor(#"^VCON sent"#, timeout: 10)
        XCTAssertTrue(waitForFile(consoleLog, containing: "VCON hello from checkguest"), "console file: \(contents(consoleLog))")
        XCTAssertTrue(waitForFile(consoleLog, containing: "typed-on-the-serial-port"))

        guest.send("netcheck\n")
        try guest.waitFor(#"^NET ok"#, timeout: 10)
        let counters = try XCTUnwrap(try api.get("vm.counters").json as? [String: [String: Int]])
        XCTAssertGreaterThan(counters["_net0"]?["tx_frames"] ?? 0, 0, "\(counters)")
        XCTAssertGreaterThan(counters["_net0"]?["rx_frames"] ?? 0, 0, "\(counters)")
        guest.send("stats\n")
        let stats = try guest.waitFor(#"^STATS .*virtio_irqs=(\S+)"#, timeout: 10)
        XCTAssertTrue(stats[1].contains("net:") && !stats[1].contains("net:0,"), "MSI-X interrupts reached the guest: \(stats[1])")
        let config = try XCTUnwrap((try api.get("vm.info").json as? [String: Any])?["config"] as? [String: Any])
        XCTAssertEqual((config["net"] as? [[String: Any]])?.first?["id"] as? String, "_net0")
        XCTAssertEqual((config["vsock"] as? [String: Any])?["id"] as? String, "_vsock1")
    }

    /// `vm.create` with net, console, rng and vsock in the JSON (no MAC: one is generated and shown in
    /// vm.info), then boot: each device works from the guest's side.
    func testDevicesThroughVmCreate() throws {
        let dir = try ScratchDirectory("vnetapi")
        let socket = dir.file("api.sock"), vsock = dir.file("vsock"), consoleLog = dir.file("console.log")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        defer { vmm.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        XCTAssertEqual(try api.put("vm.create", #"""
            {"memory":{"size":268435456},"payload":{"kernel":"\#(Paths.checkguest.path)","cmdline":"workload=idle"},
             "serial":{"mode":"Tty"},"console":{"mode":"File","file":"\#(consoleLog)"},"rng":{"src":"/dev/urandom"},
             "net":[{"ip":"192.168.249.1","mask":"255.255.255.0","id":"uplink"}],"vsock":{"cid":7,"socket":"\#(vsock)"}}
            """#).status, 204)
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        let config = try XCTUnwrap((try api.get("vm.info").json as? [String: Any])?["config"] as? [String: Any])
        let mac = try XCTUnwrap((config["net"] as? [[String: Any]])?.first?["mac"] as? String)
        try vmm.waitFor(#"^RNG ok\b"#, timeout: 20)
        try vmm.waitFor(#"^VSOCK cid=7\b"#, timeout: 10)
        try vmm.waitFor(#"^NET ok rtt_us=\d+ mac=\#(mac)"#, timeout: 10)
        let message = Array("through vm.create\n".utf8)
        XCTAssertEqual(try HybridVsockClient(socket: vsock, port: 1234).echo(message), message)
        XCTAssertTrue(waitForFile(consoleLog, containing: "VCON hello from checkguest"), contents(consoleLog))
    }

    func testBadNetworkAndVsockConfigurationsAreRefused() throws {
        let dir = try ScratchDirectory("vbad")
        for (args, expected) in [
            (["--net", "mac=01:00:5e:00:00:01"], "multicast"),
            (["--net", "mac=52:54:00:zz:00:01"], "mac"),
            (["--vsock", "cid=2,socket=\(dir.file("v"))"], "cid"),
        ] {
            let p = try GuestProcess.checkguest(cmdline: "workload=idle", extra: args)
            XCTAssertNotEqual(p.waitForExit(timeout: 10), 0, "\(args)")
            XCTAssertTrue(p.allOutput.lowercased().contains(expected), "\(args): \(p.allOutput)")
            XCTAssertFalse(p.allOutput.contains("GUEST-BOOTED"))
        }

        // Without CAP_NET_ADMIN the VMM cannot create a TAP, and says what to do instead.
        let setpriv = try Require.tool("setpriv")
        let unprivileged = try GuestProcess(executable: setpriv, arguments: [
            "--bounding-set", "-net_admin", "--inh-caps", "-net_admin", Paths.product("cloud-hypervisor").path,
            "--kernel", Paths.checkguest.path, "--serial", "tty", "--console", "off", "--net", Self.netOption,
        ])
        XCTAssertNotEqual(unprivileged.waitForExit(timeout: 10), 0)
        XCTAssertTrue(unprivileged.allOutput.contains("CAP_NET_ADMIN"), unprivileged.allOutput)

        // A vsock socket path another process listens on is not taken over.
        let taken = try UnixEchoListener(path: dir.file("taken.sock"))
        let busy = try GuestProcess.checkguest(cmdline: "workload=idle", extra: ["--vsock", "cid=3,socket=\(taken.path)"])
        XCTAssertNotEqual(busy.waitForExit(timeout: 10), 0)
        XCTAssertTrue(busy.allOutput.contains("in use"), busy.allOutput)
    }

    private func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    private func waitForFile(_ path: String, containing text: String, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if contents(path).contains(text) { return true }
            usleep(50_000)
        }
        return false
    }
}
