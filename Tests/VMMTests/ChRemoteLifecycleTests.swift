import Foundation
import TestSupport
import XCTest

/// The lifecycle through our `ch-remote`, with the guest's markers proving each step.
final class ChRemoteLifecycleTests: XCTestCase {
    private var socket = ""

    @discardableResult
    private func chRemote(_ args: String..., stdin: String? = nil, expectSuccess: Bool = true,
                          file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let p = try GuestProcess(executable: Paths.product("ch-remote").path, arguments: ["--api-socket", socket] + args)
        if let stdin { p.send(stdin) }
        try p.process.standardInput.flatMap { $0 as? Pipe }?.fileHandleForWriting.close()
        let status = p.waitForExit(timeout: 30)
        if expectSuccess {
            XCTAssertEqual(status, 0, "ch-remote \(args): \(p.allOutput)", file: file, line: line)
        } else {
            XCTAssertNotEqual(status, 0, "ch-remote \(args) should fail", file: file, line: line)
        }
        return p.allOutput
    }

    private func state() throws -> String? {
        let out = try chRemote("info")
        let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        return object?["state"] as? String
    }

    func testLifecycle() throws {
        try Require.kvm()
        try Require.checkguest()
        let dir = try ScratchDirectory()
        socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        defer { vmm.stop() }
        try RESTClient(socket: socket).waitUntilUp()

        XCTAssertTrue(try chRemote("ping").contains("version"))
        let config = """
            {"cpus":{"boot_vcpus":2,"max_vcpus":2},"memory":{"size":268435456},
             "payload":{"kernel":"\(Paths.checkguest.path)","cmdline":"workload=counter"},
             "serial":{"mode":"Tty"},"console":{"mode":"Off"}}
            """
        try chRemote("create", "-", stdin: config)
        XCTAssertEqual(try state(), "Created")
        try chRemote("boot")
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        XCTAssertEqual(try state(), "Running")
        try vmm.waitFor(#"^TICK "#, timeout: 5)
        try chRemote("pause")
        XCTAssertEqual(try state(), "Paused")
        let ticks = vmm.allLines.filter { $0.hasPrefix("TICK ") }.count
        Thread.sleep(forTimeInterval: 2.2)
        XCTAssertEqual(vmm.allLines.filter { $0.hasPrefix("TICK ") }.count, ticks, "no TICK while paused")
        let err = try chRemote("pause", expectSuccess: false)
        XCTAssertTrue(err.contains("Invalid transition") || err.contains("paused"), err)
        vmm.skipExisting()
        try chRemote("resume")
        try vmm.waitFor(#"^TICK "#, timeout: 5)
        try chRemote("reboot")
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        try chRemote("shutdown")
        XCTAssertEqual(try state(), "Created")
        try chRemote("boot")
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        let counters = try chRemote("counters")
        XCTAssertTrue(counters.contains("__serial"), counters)
        try chRemote("delete")
        try chRemote("info", expectSuccess: false)
        try chRemote("shutdown-vmm")
        XCTAssertEqual(vmm.waitForExit(timeout: 10), 0)
    }
}
