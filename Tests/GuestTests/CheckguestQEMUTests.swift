import Foundation
import TestSupport
import XCTest

/// The checkguest under QEMU+KVM (a VMM we did not write): proves the guest before our VMM relies on it.
/// Each boot is reused for several checks. Without qemu or /dev/kvm the tests skip, except with CI=true
/// where they fail. See docs/checkguest.md for the markers.
final class CheckguestQEMUTests: XCTestCase {
    override func setUpWithError() throws {
        try Checkguest.requireQEMU()
    }

    /// q35 (SeaBIOS + PVH option ROM): boot, PCI, ticks, memcheck + dirty, a corruption written from the host
    /// into the guest's RAM file, reboot by command, then power off by command.
    func testQ35WorkloadsHostCorruptionRebootPoweroff() throws {
        let memFile = GuestMemoryFile(path: GuestMemoryFile.temporaryPath())
        defer { memFile.remove() }
        let boot = try Checkguest.boot(.init(machine: .q35, append: "workload=memcheck:32,dirty:16:8",
                                             memoryFile: memFile.path))
        let guest = boot.guest
        defer { guest.stop() }
        print("checkguest boot time to GUEST-BOOTED, q35: \(String(format: "%.2f", boot.seconds)) s")
        XCTAssertEqual(boot.cpus, 2)
        XCTAssertEqual(boot.memKiB, 262_144)
        XCTAssertLessThan(boot.seconds, 20, "boot must take seconds, not minutes")
        XCTAssertTrue(guest.allLines.contains { $0.hasPrefix("PCI 00:00.0 8086:29c0 class=060000") },
                      "q35 host bridge not enumerated")

        try Checkguest.assertTickRate(guest)
        let lines = guest.allLines
        XCTAssertTrue(lines.contains { $0.hasPrefix("MEMSUM pages=8192 sum=0x") })
        let dirty = lines.filter { $0.hasPrefix("DIRTY sec=") }
        XCTAssertGreaterThanOrEqual(dirty.count, 2)
        XCTAssertTrue(dirty.allSatisfy { $0.contains(" bad=0 ") }, "\(dirty)")
        if let rate = dirty.last.flatMap({ Checkguest.field("rate", in: $0) }).flatMap(Double.init) {
            XCTAssertEqual(rate, 8, accuracy: 2, "dirty rate (MiB/s)")
        }
        let memchecks = lines.filter { $0.hasPrefix("MEMCHECK ") }
        XCTAssertFalse(memchecks.isEmpty)
        XCTAssertTrue(memchecks.allSatisfy { $0.contains(" bad=0 ") }, "\(memchecks)")

        guest.skipExisting()
        guest.send("check\n")
        try guest.waitFor(#"^CHECK ok pages=12288$"#, timeout: 10)

        // Corrupt memcheck page 77 from the host, through the RAM file (GPA == file offset below 3 GiB).
        let base = try XCTUnwrap(Checkguest.workloadBase(guest, id: 0))
        let gpa = base + 77 * 4096 + 1000
        let old = try memFile.read(at: gpa, count: 1)[0]
        try memFile.write([~old], at: gpa)
        guest.skipExisting()
        guest.send("check\n")
        let bad = try guest.waitFor(#"^CHECK bad page=77 bad_pages=1 .*src=cmd$"#, timeout: 10)
        XCTAssertTrue(bad[0].contains("gpa=0x\(String(base + 77 * 4096, radix: 16))"), bad[0])
        try guest.waitFor(#"^MEMCHECK .* bad=1 "#, timeout: 5) // the continuous verifier saw it too

        guest.skipExisting()
        guest.send("reboot\n")
        try guest.waitFor(#"^REBOOT by=command"#, timeout: 5)
        try guest.waitFor(#"^GUEST-BOOTED cpus=2 mem_kib=262144"#, timeout: 40)
        try guest.waitFor(#"^TICK 1 "#, timeout: 10)
        guest.send("poweroff\n")
        try guest.waitFor(#"^POWEROFF by=command"#, timeout: 5)
        XCTAssertEqual(guest.waitForExit(timeout: 15), 0, "QEMU did not exit after the guest powered off")
    }

    /// microvm (qboot, HW-reduced ACPI, no PCI): boot, ticks, counters, every serial command, the corrupt
    /// self-test on a memcheck page and on a dirty page, and PANIC on a page fault.
    func testMicrovmWorkloadsAndCommands() throws {
        let boot = try Checkguest.boot(.init(machine: .microvm, append: "workload=memcheck:32,dirty:16:8,counter"))
        let guest = boot.guest
        defer { guest.stop() }
        print("checkguest boot time to GUEST-BOOTED, microvm: \(String(format: "%.2f", boot.seconds)) s")
        XCTAssertEqual(boot.cpus, 2)
        XCTAssertEqual(boot.memKiB, 262_144)
        XCTAssertLessThan(boot.seconds, 10)

        let ticks = try Checkguest.assertTickRate(guest)
        // counter on CPU 0 (workload 2 -> CPU 2 mod 2), timer interrupts on both CPUs
        let (first, last) = (ticks.first!, ticks.last!)
        XCTAssertGreaterThan(last.counters[0], first.counters[0])
        for cpu in 0 ..< 2 {
            XCTAssertGreaterThan(last.irqs[cpu] - first.irqs[cpu], 200, "timer interrupts on CPU \(cpu)")
        }
        XCTAssertFalse(guest.allLines.contains { $0.hasPrefix("CLOCK ") || $0.hasPrefix("PANIC") })

        guest.skipExisting()
        guest.send("check\n")
        try guest.waitFor(#"^CHECK ok pages=12288$"#, timeout: 10)
        guest.send("sum\n")
        try guest.waitFor(#"^MEMSUM pages=12288 sum=0x[0-9a-f]{16} wl=all$"#, timeout: 10)
        guest.send("stats\n")
        try guest.waitFor(#"^STATS cpus=2 .*workloads=3 "#, timeout: 10)
        guest.send("bogus\n")
        try guest.waitFor(#"^ERROR unknown command: bogus$"#, timeout: 10)

        guest.send("corrupt 10\n")
        try guest.waitFor(#"^CORRUPT page=10 gpa=0x[0-9a-f]+ offset=2048 wl=0$"#, timeout: 10)
        guest.skipExisting()
        guest.send("check\n")
        try guest.waitFor(#"^CHECK bad page=10 bad_pages=1 wl=0 .*src=cmd$"#, timeout: 10)

        // dirty pages are numbered after memcheck's 8192: the writer finds the flipped byte before rewriting
        guest.send("corrupt 8200\n")
        try guest.waitFor(#"^CORRUPT page=8200 "#, timeout: 10)
        try guest.waitFor(#"^CHECK bad page=8200 .*src=dirty$"#, timeout: 10)
        try guest.waitFor(#"^DIRTY sec=\d+ rate=[\d.]+ bad=1 "#, timeout: 5)

        guest.send("run memcheck:4\n")
        try guest.waitFor(#"^WORKLOAD id=3 name=memcheck:4 cpu=1 first_page=12288 pages=1024 base=0x"#, timeout: 10)
        try guest.waitFor(#"^MEMSUM pages=1024 sum=0x[0-9a-f]{16} wl=3"#, timeout: 10)
        guest.send("run nonsense\n")
        try guest.waitFor(#"^ERROR run nonsense: unknown workload"#, timeout: 10)

        guest.send("fault\n")
        try guest.waitFor(#"^PANIC vec=14 #PF rip=0x[0-9a-f]+ err=0x4 cr2=0x7f0000000000 "#, timeout: 10)
    }

    /// The poweroff and reboot workloads on both machines, and the triple-fault reset fallback.
    func testPoweroffAndRebootWorkloads() throws {
        for machine in [QEMU.Machine.microvm, .q35] {
            let off = try Checkguest.boot(.init(machine: machine, append: "workload=poweroff")).guest
            defer { off.stop() }
            try off.waitFor(#"^POWEROFF by=workload"#, timeout: 10)
            XCTAssertEqual(off.waitForExit(timeout: 15), 0, "\(machine): QEMU did not exit on poweroff")
        }
        for (machine, reset) in [(QEMU.Machine.microvm, "acpi"), (.microvm, "triple"), (.q35, "kbd")] {
            let boot = try Checkguest.boot(.init(machine: machine, append: "workload=reboot reset=\(reset)"))
            defer { boot.guest.stop() }
            try boot.guest.waitFor(#"^REBOOT by=workload"#, timeout: 10)
            try boot.guest.waitFor(#"^GUEST-BOOTED cpus=2 mem_kib=262144"#, timeout: 40)
        }
    }

    /// A correct snapshot/restore (QEMU: live migration to a file, then `-incoming`) raises no alarm: TICK
    /// continues at n+1, no CLOCK jump, every page verifies, memcheck and dirty keep bad=0.
    func testSnapshotRestoreUnderQEMUContinues() throws {
        let monitorPath = "/tmp/checkguest-mon-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
        let snapshot = GuestMemoryFile.temporaryPath(tag: "checkguest-snap")
        defer {
            unlink(monitorPath)
            unlink(snapshot)
        }
        var options = QEMU.Options(machine: .microvm, append: "workload=memcheck:32,dirty:16:50,counter",
                                   extraArguments: QEMUMonitor.arguments(socket: monitorPath))
        let source = try Checkguest.boot(options).guest
        defer { source.stop() }
        try Checkguest.waitTick(source)
        try Checkguest.waitTick(source)
        let monitor = try QEMUMonitor(socket: monitorPath)
        try monitor.command("migrate \"exec:cat > \(snapshot)\"")
        let deadline = Date().addingTimeInterval(30)
        while !(try monitor.command("info migrate")).contains("Migration status: completed") {
            XCTAssertLessThan(Date(), deadline, "migration to a file did not complete")
            if Date() > deadline { return }
            usleep(100_000)
        }
        let lastTick = try XCTUnwrap(source.allLines.last { $0.hasPrefix("TICK ") }.flatMap {
            Int($0.split(separator: " ")[1])
        })
        _ = try? monitor.command("quit", timeout: 5)
        _ = source.waitForExit(timeout: 10)

        unlink(monitorPath)
        options.extraArguments = ["-incoming", "exec:cat \(snapshot)"]
        let restored = try QEMU.launch(options)
        defer { restored.stop() }
        let tick = try Checkguest.waitTick(restored, timeout: 15)
        XCTAssertEqual(tick.n, lastTick + 1, "TICK must continue from guest memory")
        restored.send("check\n")
        try restored.waitFor(#"^CHECK ok pages=12288$"#, timeout: 10)
        try Checkguest.assertTickRate(restored)
        let lines = restored.allLines
        XCTAssertFalse(lines.contains { $0.hasPrefix("GUEST-BOOTED") }, "the restored guest must not boot again")
        XCTAssertFalse(lines.contains { $0.hasPrefix("CLOCK ") || $0.hasPrefix("PANIC") || $0.contains("bad=1") },
                       lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.hasPrefix("DIRTY sec=") && $0.contains(" bad=0 ") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("MEMCHECK sec=") && $0.contains(" bad=0 ") })
    }

    /// The TSC clock (calibrated against the PIT) keeps 1 s ticks, and a tiny clock bound makes the
    /// CLOCK check fire (an idle CPU sleeps ~10 ms between two clock reads).
    func testTscClockAndClockJumpDetection() throws {
        let boot = try Checkguest.boot(.init(machine: .microvm, append: "clock=tsc clockbound_ms=2"))
        let guest = boot.guest
        defer { guest.stop() }
        XCTAssertTrue(guest.allLines.contains { $0.hasPrefix("CLOCKSRC tsc tsc_khz=") })
        try guest.waitFor(#"^CLOCK jump_ms=\+\d+ cpu=\d bound_ms=2$"#, timeout: 10)
        try Checkguest.assertTickRate(guest)
    }
}

private struct Unavailable: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

/// Helpers for reading the checkguest's console.
enum Checkguest {
    /// Skips the test without QEMU+KVM or a built checkguest — or fails it under CI=true, where they must be.
    static func requireQEMU() throws {
        guard let why = buildProblem ?? QEMU.unavailableReason else { return }
        if QEMU.mustRun {
            XCTFail("CI=true but \(why)")
            throw Unavailable(reason: why)
        }
        throw XCTSkip(why)
    }

    struct Boot {
        let guest: GuestProcess
        let seconds: Double
        let cpus: Int
        let memKiB: Int
    }

    struct Tick {
        let n: Int
        let tMs: Int
        let irqs: [Int]
        let counters: [Int]
        let hostTime: Date
    }

    /// Builds the guest once per test process (make is incremental), so the tests use current sources.
    static let buildProblem: String? = {
        let make: (status: Int32, output: String)
        do {
            make = try HostCommand.run(Paths.which("make") ?? "/usr/bin/make",
                                       ["-s", "-C", Paths.root.appendingPathComponent("Tests/Guest").path])
        } catch {
            return "cannot run make: \(error)"
        }
        return make.status == 0 ? nil : "make -C Tests/Guest failed:\n\(make.output)"
    }()

    static func boot(_ options: QEMU.Options, timeout: TimeInterval = 40) throws -> Boot {
        let start = Date()
        let guest = try QEMU.launch(options)
        do {
            let m = try guest.waitFor(#"^GUEST-BOOTED cpus=(\d+) mem_kib=(\d+)"#, timeout: timeout)
            return Boot(guest: guest, seconds: Date().timeIntervalSince(start), cpus: Int(m[1]) ?? -1,
                        memKiB: Int(m[2]) ?? -1)
        } catch {
            guest.stop()
            throw error
        }
    }

    static func field(_ name: String, in line: String) -> String? {
        for part in line.split(separator: " ") where part.hasPrefix("\(name)=") {
            return String(part.dropFirst(name.count + 1))
        }
        return nil
    }

    static func workloadBase(_ guest: GuestProcess, id: Int) -> UInt64? {
        guard let line = guest.allLines.first(where: { $0.hasPrefix("WORKLOAD id=\(id) ") }),
              let hex = field("base", in: line) else { return nil }
        return UInt64(hex.dropFirst(2), radix: 16)
    }

    @discardableResult
    static func waitTick(_ guest: GuestProcess, timeout: TimeInterval = 5) throws -> Tick {
        let m = try guest.waitFor(#"^TICK (\d+) t_ms=(\d+) irq=([\d,]+) ctr=([\d,]+)"#, timeout: timeout)
        let ints = { (s: String) in s.split(separator: ",").map { Int($0) ?? -1 } }
        return Tick(n: Int(m[1]) ?? -1, tMs: Int(m[2]) ?? -1, irqs: ints(m[3]), counters: ints(m[4]),
                    hostTime: Date())
    }

    /// Four consecutive TICKs: numbered n, n+1, …; 1 s apart (±20 %) by the host's clock and by t_ms.
    @discardableResult
    static func assertTickRate(_ guest: GuestProcess, file: StaticString = #filePath,
                               line: UInt = #line) throws -> [Tick] {
        var ticks = [try waitTick(guest)]
        for _ in 0 ..< 3 { ticks.append(try waitTick(guest, timeout: 3)) }
        for (a, b) in zip(ticks, ticks.dropFirst()) {
            XCTAssertEqual(b.n, a.n + 1, "TICK numbers must be consecutive", file: file, line: line)
        }
        let host = ticks.last!.hostTime.timeIntervalSince(ticks.first!.hostTime)
        let guestSeconds = Double(ticks.last!.tMs - ticks.first!.tMs) / 1000
        XCTAssertEqual(host, 3, accuracy: 0.6, "host seconds for 3 TICK periods", file: file, line: line)
        XCTAssertEqual(guestSeconds, 3, accuracy: 0.6, "t_ms for 3 TICK periods", file: file, line: line)
        return ticks
    }
}
