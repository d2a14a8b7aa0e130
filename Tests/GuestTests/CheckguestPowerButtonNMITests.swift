import Foundation
import TestSupport
import XCTest

/// The checkguest's reaction to NMIs and to the ACPI power button, driven through QEMU's monitor (`nmi`,
/// `system_powerdown`). microvm has a Generic Event Device like our VMM (HW-reduced ACPI, "ACPI0013" in the
/// DSDT, GSI 9 there, 5 in ours); q35 has the fixed power button (PM1 status, SCI on GSI 9).
/// See docs/checkguest.md ("Power button and NMI").
final class CheckguestPowerButtonNMITests: XCTestCase {
    override func setUpWithError() throws {
        try Checkguest.requireQEMU()
    }

    private static func monitorPath() -> String {
        "/tmp/checkguest-mon-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
    }

    /// Sends `nmi` (to every CPU) and waits until a TICK shows `nmi=K,K`; both CPUs' NMI lines must be there.
    private func sendNMI(_ monitor: QEMUMonitor, _ guest: GuestProcess, expect count: Int,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        try monitor.command("nmi")
        try guest.waitFor(#"^TICK \d+ .* nmi=\#(count),\#(count)$"#, timeout: 5)
        let lines = guest.allLines
        for cpu in 0 ..< 2 {
            XCTAssertTrue(lines.contains("NMI cpu=\(cpu) count=\(count)"), "NMI cpu=\(cpu) count=\(count) missing",
                          file: file, line: line)
        }
    }

    /// microvm (GED, like our VMM): two rounds of NMIs while memcheck/dirty/counter run – no PANIC, ticks
    /// and workloads continue, every page verifies – then the power button powers the guest off (exit 0).
    func testMicrovmNMIThenPowerButtonPowersOff() throws {
        let socket = Self.monitorPath()
        defer { unlink(socket) }
        let boot = try Checkguest.boot(.init(machine: .microvm, append: "workload=memcheck:16,dirty:8:8,counter",
                                             extraArguments: QEMUMonitor.arguments(socket: socket)))
        let guest = boot.guest
        defer { guest.stop() }
        let power = try XCTUnwrap(guest.allLines.first { $0.hasPrefix("ACPI-POWER ") })
        XCTAssertEqual(Checkguest.field("pwrbtn", in: power), "ged", power)
        XCTAssertEqual(Checkguest.field("ged_gsi", in: power), "9", power) // QEMU's microvm GED_MMIO_IRQ
        XCTAssertEqual(Checkguest.field("ged_src", in: power), "dsdt", power)

        try Checkguest.waitTick(guest)
        let monitor = try QEMUMonitor(socket: socket)
        try sendNMI(monitor, guest, expect: 1)
        try sendNMI(monitor, guest, expect: 2)
        let ticks = try Checkguest.assertTickRate(guest)
        XCTAssertGreaterThan(ticks.last!.counters[0], ticks.first!.counters[0], "counter workload stopped")
        guest.send("check\n")
        try guest.waitFor(#"^CHECK ok pages=6144$"#, timeout: 10)
        let lines = guest.allLines
        XCTAssertFalse(lines.contains { $0.hasPrefix("PANIC") || $0.hasPrefix("CLOCK ") || $0.contains(" bad=1") },
                       lines.joined(separator: "\n"))
        XCTAssertEqual(lines.filter { $0.hasPrefix("NMI ") }.count, 4, "one NMI line per CPU per `nmi`")

        guest.skipExisting()
        try monitor.command("system_powerdown")
        try guest.waitFor(#"^POWER-BUTTON gsi=9 via=ged count=1$"#, timeout: 5)
        try guest.waitFor(#"^POWEROFF by=power-button$"#, timeout: 5)
        XCTAssertEqual(guest.waitForExit(timeout: 15), 0, "QEMU did not exit after the power button")
    }

    /// q35 (fixed power button: PM1a PWRBTN_STS, SCI): NMIs reach both CPUs; with `power_button=log` each
    /// press only prints POWER-BUTTON and the guest keeps running; `poweroff` still works afterwards.
    func testQ35NMIAndPowerButtonThroughSCI() throws {
        let socket = Self.monitorPath()
        defer { unlink(socket) }
        let boot = try Checkguest.boot(.init(machine: .q35, append: "workload=dirty:8:8 power_button=log",
                                             extraArguments: QEMUMonitor.arguments(socket: socket)))
        let guest = boot.guest
        defer { guest.stop() }
        let power = try XCTUnwrap(guest.allLines.first { $0.hasPrefix("ACPI-POWER ") })
        XCTAssertEqual(Checkguest.field("pwrbtn", in: power), "sci", power)
        XCTAssertEqual(Checkguest.field("ged_gsi", in: power), "none", power)
        XCTAssertEqual(Checkguest.field("sci_gsi", in: power), "9", power)
        XCTAssertEqual(Checkguest.field("pm1a_evt", in: power), "0x600", power)

        try Checkguest.waitTick(guest)
        let monitor = try QEMUMonitor(socket: socket)
        try sendNMI(monitor, guest, expect: 1)

        for _ in 0 ..< 2 {
            guest.skipExisting()
            try monitor.command("system_powerdown")
            let press = try guest.waitFor(#"^POWER-BUTTON gsi=9 via=sci count=\d+ sts=0x([0-9a-f]+)$"#, timeout: 5)
            XCTAssertNotEqual((UInt64(press[1], radix: 16) ?? 0) & 0x100, 0, "PWRBTN_STS not in \(press[0])")
            try Checkguest.waitTick(guest)
        }
        try Checkguest.assertTickRate(guest)
        let lines = guest.allLines
        XCTAssertFalse(lines.contains { $0.hasPrefix("POWEROFF") || $0.hasPrefix("PANIC") || $0.contains(" bad=1") },
                       lines.joined(separator: "\n"))
        guest.send("stats\n")
        try guest.waitFor(#"^STATS cpus=2 .* nmi=1,1 pwrbtn_irq=0 sci_irq=[1-9]"#, timeout: 10)
        guest.send("poweroff\n")
        try guest.waitFor(#"^POWEROFF by=command"#, timeout: 5)
        XCTAssertEqual(guest.waitForExit(timeout: 15), 0, "QEMU did not exit after the guest powered off")
    }
}
