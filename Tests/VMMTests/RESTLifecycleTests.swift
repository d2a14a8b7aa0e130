import Foundation
import TestSupport
import XCTest

/// The REST API against the real VMM and a real guest: CH's documented calls, the whole lifecycle with
/// the guest's own markers proving each step, wrong-state errors, power button, NMI and events.
final class RESTLifecycleTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    private func startVMM(_ dir: ScratchDirectory, extra: [String] = []) throws -> (GuestProcess, RESTClient) {
        let socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"] + extra)
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        return (vmm, api)
    }

    /// CH's docs/api.md body with the kernel path adapted (disks/net need the virtio devices: issue 6).
    private func createBody(cpus: Int = 2, cmdline: String) -> String {
        """
        {"cpus":{"boot_vcpus": \(cpus), "max_vcpus": \(cpus)},
         "memory":{"size": 268435456},
         "payload":{"kernel":"\(Paths.checkguest.path)", "cmdline":"\(cmdline)"},
         "serial":{"mode":"Tty"}, "console":{"mode":"Off"},
         "rng":{"src":"/dev/urandom"}}
        """
    }

    /// User + system CPU time the process has used (/proc/PID/stat fields 14 and 15, in clock ticks).
    private func cpuSeconds(_ process: GuestProcess) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(process.process.processIdentifier)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        return Double(Int(fields[11])! + Int(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func state(_ api: RESTClient) throws -> String? {
        let reply = try api.get("vm.info")
        guard reply.status == 200, let object = reply.json as? [String: Any] else { return nil }
        return object["state"] as? String
    }

    func testLifecycleProvedByTheGuest() throws {
        let dir = try ScratchDirectory()
        let events = dir.file("events.json")
        let (vmm, api) = try startVMM(dir, extra: ["--event-monitor", "path=\(events)"])
        defer { vmm.stop() }

        XCTAssertEqual(try api.get("vm.info").status, 404, "no VM yet")
        let ping = try api.get("vmm.ping")
        XCTAssertEqual(ping.status, 200)
        XCTAssertNotNil((ping.json as? [String: Any])?["version"])

        XCTAssertEqual(try api.put("vm.create", createBody(cmdline: "workload=counter")).status, 204)
        XCTAssertEqual(try state(api), "Created")
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 mem_kib=262144"#, timeout: 20)
        XCTAssertEqual(try state(api), "Running")
        let info = try XCTUnwrap(try api.get("vm.info").json as? [String: Any])
        let config = try XCTUnwrap(info["config"] as? [String: Any])
        XCTAssertEqual((config["cpus"] as? [String: Any])?["boot_vcpus"] as? Int, 2)
        XCTAssertEqual(info["memory_actual_size"] as? Int, 268435456)
        XCTAssertNotNil((info["device_tree"] as? [String: Any])?["__serial"])

        // Pause: no TICK while paused; resume: they continue, in sequence.
        try vmm.waitFor(#"^TICK "#, timeout: 5)
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        XCTAssertEqual(try state(api), "Paused")
        let before = vmm.allLines.filter { $0.hasPrefix("TICK ") }
        let cpuBefore = try cpuSeconds(vmm)
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertEqual(vmm.allLines.filter { $0.hasPrefix("TICK ") }.count, before.count, "TICKs while paused")
        XCTAssertLessThan(try cpuSeconds(vmm) - cpuBefore, 0.25, "a paused VM must not burn CPU (parked vCPU threads)")
        vmm.skipExisting()
        XCTAssertEqual(try api.put("vm.resume").status, 204)
        let next = Int(try vmm.waitFor(#"^TICK (\d+) "#, timeout: 5)[1])!
        XCTAssertEqual(next, Int(before.last!.split(separator: " ")[1])! + 1)

        // Reboot: the guest boots again in the same process.
        XCTAssertEqual(try api.put("vm.reboot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)

        // Shutdown keeps the config: Created, and it boots again.
        XCTAssertEqual(try api.put("vm.shutdown").status, 204)
        XCTAssertEqual(try state(api), "Created")
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        XCTAssertEqual(try api.put("vm.delete").status, 204)
        XCTAssertEqual(try api.get("vm.info").status, 404)
        XCTAssertEqual(try api.put("vm.delete").status, 204, "delete is idempotent")
        XCTAssertTrue(vmm.process.isRunning)

        let log = try String(contentsOfFile: events, encoding: .utf8)
        for event in ["starting", "booting", "booted", "pausing", "paused", "resuming", "resumed",
                      "rebooting", "rebooted", "shutdown", "deleted"] {
            XCTAssertTrue(log.contains(#""event" : "\#(event)""#), "event \(event) missing: \(log)")
        }
        XCTAssertTrue(log.contains(#""timestamp""#) && log.contains(#""secs""#) && log.contains(#""nanos""#))
    }

    func testWrongStateAndMalformedRequestsGetCHErrors() throws {
        let dir = try ScratchDirectory()
        let (vmm, api) = try startVMM(dir)
        defer { vmm.stop() }
        // No VM: 404 with an error chain.
        let pause = try api.put("vm.pause")
        XCTAssertEqual(pause.status, 404)
        XCTAssertEqual((pause.json as? [String])?.first, "Error from API")
        // Malformed JSON: 400 with CH's first element.
        let bad = try api.put("vm.create", #"{"cpus":"#)
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual((bad.json as? [String])?.first, "Failed to deserialize JSON")
        // A body where none is allowed, and a missing one.
        XCTAssertEqual(try api.put("vm.boot", "{}").status, 400)
        XCTAssertEqual(try api.put("vm.create").status, 400)
        XCTAssertEqual(try api.get("vm.nonexistent").status, 404)
        XCTAssertEqual(try api.get("vm.migration-progress").status, 404, "no migration has run")

        XCTAssertEqual(try api.put("vm.create", createBody(cpus: 1, cmdline: "workload=idle")).status, 204)
        let again = try api.put("vm.create", createBody(cpus: 1, cmdline: "workload=idle"))
        XCTAssertEqual(again.status, 500, again.body)
        XCTAssertEqual(try api.put("vm.resume").status, 500, "resume before boot")
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED "#, timeout: 20)
        let boot = try api.put("vm.boot")
        XCTAssertEqual(boot.status, 500, "boot while running")
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        let pauseAgain = try api.put("vm.pause")
        XCTAssertEqual(pauseAgain.status, 500)
        let chain = try XCTUnwrap(pauseAgain.json as? [String])
        XCTAssertEqual(chain.first, "Error from API")
        XCTAssertTrue(chain.contains { $0.contains("Invalid transition") }, "\(chain)")
        // Not-yet-supported endpoints answer with CH's shape, never crash.
        let resize = try api.put("vm.resize", #"{"desired_vcpus":2}"#)
        XCTAssertEqual(resize.status, 500)
        XCTAssertTrue(resize.body.contains("not supported"), resize.body)
        XCTAssertEqual(try api.get("vmm.ping").status, 200)
    }

    func testNMIReachesEveryVCPUAndPowerButtonShutsTheGuestDown() throws {
        let dir = try ScratchDirectory()
        let (vmm, api) = try startVMM(dir)
        XCTAssertEqual(try api.put("vm.create", createBody(cmdline: "workload=counter")).status, 204)
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED cpus=2 "#, timeout: 20)
        XCTAssertEqual(try api.put("vm.nmi").status, 204)
        try vmm.waitFor(#"^NMI cpu=\d count=1"#, timeout: 5)
        try vmm.waitFor(#"^NMI cpu=\d count=1"#, timeout: 5)
        try vmm.waitFor(#"^TICK .*nmi=1,1"#, timeout: 5)
        XCTAssertEqual(try api.put("vm.power-button").status, 204)
        try vmm.waitFor(#"^POWER-BUTTON gsi=5 via=ged"#, timeout: 5)
        XCTAssertEqual(vmm.waitForExit(timeout: 10), 0, "the guest's own S5 path ends the VMM")
    }

    func testCountersCountSerialTraffic() throws {
        let dir = try ScratchDirectory()
        let (vmm, api) = try startVMM(dir)
        defer { vmm.stop() }
        XCTAssertEqual(try api.put("vm.create", createBody(cpus: 1, cmdline: "workload=idle")).status, 204)
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED "#, timeout: 20)
        func out() throws -> Int {
            let c = try XCTUnwrap(try api.get("vm.counters").json as? [String: [String: Int]])
            return try XCTUnwrap(c["__serial"]?.values.max())
        }
        let first = try out()
        try vmm.waitFor(#"^TICK "#, timeout: 5)
        XCTAssertGreaterThan(try out(), first)
    }
}
