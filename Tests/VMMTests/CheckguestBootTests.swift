import Foundation
import TestSupport
import XCTest

/// The VMM core against real KVM: the checkguest reports what it found and verifies itself.
final class CheckguestBootTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
    }

    /// TICK n t_ms=T lines: n increments by one, guest time advances ≈1 s per tick, and so does host time.
    private func assertTicks(_ guest: GuestProcess, count: Int = 3) throws {
        var previous: (n: Int, t: Int, host: Date)?
        for _ in 0..<count {
            let m = try guest.waitFor(#"^TICK (\d+) t_ms=(\d+)"#, timeout: 5)
            let now = (n: Int(m[1])!, t: Int(m[2])!, host: Date())
            if let p = previous {
                XCTAssertEqual(now.n, p.n + 1, "TICK numbers must increase by one")
                XCTAssertEqual(Double(now.t - p.t), 1000, accuracy: 200, "guest clock: one TICK per second")
                XCTAssertEqual(now.host.timeIntervalSince(p.host), 1.0, accuracy: 0.2, "host time between TICKs")
            }
            previous = now
        }
    }

    func testOneVCPU256MiBTicksAndPowersOff() throws {
        let guest = try GuestProcess.checkguest(cpus: 1, memory: "256M", cmdline: "workload=counter")
        try guest.waitFor(#"^GUEST-BOOTED cpus=1 mem_kib=262144\b"#, timeout: 20)
        try assertTicks(guest)
        guest.send("poweroff\n")
        XCTAssertEqual(guest.waitForExit(timeout: 10), 0, "guest power-off must end the VMM with status 0")
    }

    func testTwoVCPUs1GiBMemcheckAndDirty() throws {
        let guest = try GuestProcess.checkguest(cpus: 2, memory: "1G", cmdline: "workload=memcheck:64,dirty:32:20")
        try guest.waitFor(#"^GUEST-BOOTED cpus=2 mem_kib=1048576\b"#, timeout: 20)
        try guest.waitFor(#"^MEMSUM pages=16384 sum=\w+"#, timeout: 20)
        for _ in 0..<3 {
            try guest.waitFor(#"^DIRTY .*\bbad=0\b"#, timeout: 5)
        }
        try assertTicks(guest, count: 2)
        guest.send("check\n")
        try guest.waitFor(#"^CHECK ok\b"#, timeout: 20)
        XCTAssertFalse(guest.allOutput.contains("CHECK bad"))
        XCTAssertFalse(guest.allOutput.contains("PANIC"))
        guest.stop()
    }

    func testWorkloadPoweroffExitsZero() throws {
        let guest = try GuestProcess.checkguest(cpus: 2, cmdline: "workload=poweroff")
        try guest.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        XCTAssertEqual(guest.waitForExit(timeout: 10), 0)
    }

    func testRebootBootsAgainInTheSameProcess() throws {
        let guest = try GuestProcess.checkguest(cpus: 2, cmdline: "workload=idle")
        try guest.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        let pid = guest.process.processIdentifier
        guest.send("reboot\n")
        try guest.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        XCTAssertTrue(guest.process.isRunning)
        XCTAssertEqual(guest.process.processIdentifier, pid)
        try guest.waitFor(#"^TICK "#, timeout: 5)
        guest.stop()
    }

    func testWorkloadRebootRebootsRepeatedly() throws {
        let guest = try GuestProcess.checkguest(cpus: 1, cmdline: "workload=reboot")
        for _ in 0..<3 { try guest.waitFor(#"^GUEST-BOOTED cpus=1 "#, timeout: 20) }
        guest.stop()
    }

    func testSigtermStopsCleanly() throws {
        let guest = try GuestProcess.checkguest(cpus: 1, cmdline: "workload=idle")
        try guest.waitFor(#"^GUEST-BOOTED "#, timeout: 20)
        guest.process.terminate()
        XCTAssertEqual(guest.waitForExit(timeout: 10), 0)
    }
}

/// Each way a guest resets the machine reboots it in the same process; `--no-shutdown` keeps the VMM up.
final class ResetPathTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
    }

    func testEveryResetPathReboots() throws {
        for path in ["acpi", "kbd", "triple"] {
            let guest = try GuestProcess.checkguest(cpus: 1, cmdline: "workload=reboot reset=\(path)")
            for _ in 0..<2 { try guest.waitFor(#"^GUEST-BOOTED cpus=1 "#, timeout: 20) }
            XCTAssertTrue(guest.process.isRunning, "reset=\(path)")
            guest.stop()
        }
    }

    func testNoShutdownKeepsTheVMMAfterPowerOff() throws {
        _ = try Require.tool("curl")
        let dir = try ScratchDirectory()
        let socket = dir.file("api.sock")
        let guest = try GuestProcess.checkguest(cpus: 1, cmdline: "workload=poweroff",
                                                extra: ["--no-shutdown", "--api-socket", "path=\(socket)"])
        defer { guest.stop() }
        try guest.waitFor(#"^POWEROFF"#, timeout: 20)
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertTrue(guest.process.isRunning, "--no-shutdown must keep the VMM running")
        let info = try api.get("vm.info")
        XCTAssertTrue(info.body.contains(#""state":"Shutdown""#), info.body)
    }
}
