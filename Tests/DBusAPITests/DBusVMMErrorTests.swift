import Foundation
import TestSupport
import XCTest

/// The real VMM's failures over D-Bus: the same error chains as REST, the VMM unharmed, and the startup
/// errors (name taken, no bus) a user sees.
final class DBusVMMErrorTests: XCTestCase {
    private var bus: PrivateBus!
    private var client: BusClient!

    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
        bus = try PrivateBus()
        client = try BusClient(bus: bus)
    }

    override func tearDown() {
        bus?.stop()
    }

    /// The D-Bus error of `method` carries exactly the REST error body of `endpoint`.
    private func assertSameError(_ method: String, _ argument: String? = nil, as endpoint: String, _ rest: RESTClient,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let dbus = try client.call(method, argument)
        XCTAssertFalse(dbus.succeeded, "\(method) should fail", file: file, line: line)
        let http = try rest.put(endpoint, argument)
        XCTAssertGreaterThanOrEqual(http.status, 400, file: file, line: line)
        XCTAssertEqual(dbus.errorChain, http.json as? [String], method, file: file, line: line)
    }

    func testVMMErrorsCarryTheRESTChainAndTheVMMKeepsRunning() throws {
        let dir = try ScratchDirectory()
        let vmm = try GuestProcess.vmm(on: bus, socket: dir.file("api.sock"))
        defer { vmm.stop() }
        try client.waitUntilServed()
        let rest = RESTClient(socket: dir.file("api.sock"))
        try rest.waitUntilUp()

        // No VM yet.
        try assertSameError("VmPause", as: "vm.pause", rest)
        try assertSameError("VmBoot", as: "vm.boot", rest)
        XCTAssertEqual(try client.call("VmInfo").errorChain, try rest.get("vm.info").json as? [String])

        // Bad JSON never reaches the VMM.
        let syntax = try client.call("VmCreate", #"{"cpus":"#)
        XCTAssertEqual(syntax.errorChain?.first, "Failed to deserialize JSON", syntax.result.stderr)
        let field = try client.call("VmCreate", #"{"memory":{"shared":true}}"#)
        XCTAssertTrue(field.errorChain?.last?.contains("size") == true, field.result.stderr)

        // Wrong state once a VM exists and runs.
        XCTAssertTrue(try client.call("VmCreate", DBusLifecycleTests.createBody(cpus: 1, cmdline: "workload=idle")).succeeded)
        try assertSameError("VmCreate", DBusLifecycleTests.createBody(cpus: 1, cmdline: "workload=idle"), as: "vm.create", rest)
        try assertSameError("VmResume", as: "vm.resume", rest)
        XCTAssertTrue(try client.call("VmBoot").succeeded)
        try vmm.waitFor(#"^GUEST-BOOTED "#, timeout: 20)
        try assertSameError("VmBoot", as: "vm.boot", rest)
        XCTAssertTrue(try client.call("VmPause").succeeded)
        let again = try client.call("VmPause")
        XCTAssertEqual(again.errorChain?.first, "Error from API")
        XCTAssertTrue(again.errorChain?.contains { $0.contains("Invalid transition") } == true, "\(again.errorChain ?? [])")
        try assertSameError("VmPause", as: "vm.pause", rest)
        try assertSameError("VmResize", #"{"desired_vcpus":2}"#, as: "vm.resize", rest)

        XCTAssertTrue(try client.call("VmmPing").succeeded)
        XCTAssertTrue(vmm.process.isRunning)
        XCTAssertTrue(try client.call("VmResume").succeeded)
        vmm.skipExisting()
        try vmm.waitFor(#"^TICK "#, timeout: 5)
    }

    func testASecondVMMCannotTakeTheName() throws {
        let dir = try ScratchDirectory()
        let first = try GuestProcess.vmm(on: bus, socket: dir.file("first.sock"))
        defer { first.stop() }
        try client.waitUntilServed()
        let second = try GuestProcess.vmm(on: bus, socket: dir.file("second.sock"))
        defer { second.stop() }
        XCTAssertEqual(second.waitForExit(timeout: 10), 1)
        XCTAssertTrue(second.allOutput.contains("Error: the name \(BusClient.service) is already owned on the session bus"),
                      second.allOutput)
        let ping = try XCTUnwrap(try client.call("VmmPing").json as? [String: Any])
        XCTAssertEqual(ping["pid"] as? Int, Int(first.process.processIdentifier), "the first VMM keeps the name")
    }

    func testNoSessionBusIsAClearStartupError() throws {
        let dir = try ScratchDirectory()
        // No DBUS_SESSION_BUS_ADDRESS, no XDG_RUNTIME_DIR/bus, no X11 to autolaunch a bus from.
        let vmm = try GuestProcess(executable: Paths.product("cloud-hypervisor").path,
                                   arguments: ["--api-socket", "path=\(dir.file("api.sock"))", "--dbus-service-name", BusClient.service],
                                   environment: ["PATH": "/usr/bin:/bin"])
        defer { vmm.stop() }
        XCTAssertEqual(vmm.waitForExit(timeout: 10), 1)
        XCTAssertTrue(vmm.allOutput.contains("Error: cannot connect to the session bus for the D-Bus API"), vmm.allOutput)
        XCTAssertTrue(vmm.allOutput.contains("DBUS_SESSION_BUS_ADDRESS"), vmm.allOutput)
    }

    func testAnObjectPathWithoutAServiceNameIsRefused() throws {
        let dir = try ScratchDirectory()
        let vmm = try GuestProcess(executable: Paths.product("cloud-hypervisor").path,
                                   arguments: ["--api-socket", "path=\(dir.file("api.sock"))", "--dbus-object-path", "/a/b"])
        defer { vmm.stop() }
        XCTAssertEqual(vmm.waitForExit(timeout: 10), 1)
        XCTAssertTrue(vmm.allOutput.contains("--dbus-object-path /a/b needs --dbus-service-name"), vmm.allOutput)
    }
}
