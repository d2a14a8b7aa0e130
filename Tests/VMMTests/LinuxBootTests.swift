import Foundation
import TestSupport
import XCTest

/// A real Linux kernel (Debian's cloud kernel, fetched by scripts/fetch-linux) parsing our boot data.
///
/// This machine's KVM runs guest kernel code in its instruction emulator, which stops a stock kernel
/// later in boot (docs/boot.md); the test watches the console for what the kernel reports about the
/// machine we built, then stops the VM.
final class LinuxBootTests: XCTestCase {
    private let linuxDir = Paths.root.appendingPathComponent(".build/linux")

    private func kernel(_ name: String) throws -> String {
        try Require.kvm()
        let path = linuxDir.appendingPathComponent(name).path
        if !FileManager.default.fileExists(atPath: path) {
            if Require.inCI { XCTFail("\(path) missing: scripts/test runs scripts/fetch-linux first") }
            throw XCTSkip("\(path) missing: run scripts/fetch-linux")
        }
        return path
    }

    /// Boots `kernel` with 512 MiB and its console on the serial port; the command line ends with a marker
    /// unique to this run, so the test knows the kernel printed *our* command line.
    private func boot(_ kernel: String, cpus: Int) throws -> (GuestProcess, String) {
        let marker = "swiftch_test=\(getpid())"
        let vm = try GuestProcess.vmm(["--kernel", kernel, "--cpus", "boot=\(cpus)", "--memory", "size=512M",
                                       "--serial", "tty", "--console", "off",
                                       "--cmdline", "console=ttyS0 earlyprintk=ttyS0 \(marker)"])
        return (vm, marker)
    }

    func testPVHVmlinuxSeesOurCommandLineE820ACPIAndCPUs() throws {
        let vmlinux = try kernel("vmlinux")
        let (vm, marker) = try boot(vmlinux, cpus: 2)
        defer { vm.stop() }
        try vm.waitFor(#"Command line: console=ttyS0 earlyprintk=ttyS0 \#(marker)$"#, timeout: 30)
        // The E820 map we built: low RAM, then RAM from 1 MiB to the end of 512 MiB.
        try vm.waitFor(#"BIOS-e820: \[mem 0x0000000000000000-0x000000000009ffff\] usable"#, timeout: 10)
        try vm.waitFor(#"BIOS-e820: \[mem 0x0000000000100000-0x000000001fffffff\] usable"#, timeout: 10)
        // Our ACPI tables, found through the PVH start info's RSDP.
        try vm.waitFor(#"ACPI: RSDP 0x00000000000A0000 .*SWIFTC"#, timeout: 60)
        for table in ["XSDT", "FACP", "DSDT", "APIC", "MCFG"] {
            try vm.waitFor(#"ACPI: \#(table) 0x[0-9A-F]+ .*SWIFTC"#, timeout: 30)
        }
        // Both vCPUs, from the MADT (Debian's cloud kernel has no MP-table parser).
        try vm.waitFor(#"smpboot: Allowing 2 CPUs, 0 hotplug CPUs"#, timeout: 60)
    }

    /// The bzImage path: 64-bit boot protocol entry, zero page. Debian builds without
    /// CONFIG_X86_VERBOSE_BOOTUP, so its decompressor prints nothing; the decompressed kernel's banner and
    /// boot data prove the stub ran to completion in the emulator (≈ 1–2 minutes here).
    func testBzImageDecompressesAndSeesOurBootParams() throws {
        let bzImage = try kernel("bzImage")
        let (vm, marker) = try boot(bzImage, cpus: 1)
        defer { vm.stop() }
        try vm.waitFor(#"Linux version \d+\.\d+"#, timeout: 300)
        try vm.waitFor(#"Command line: console=ttyS0 earlyprintk=ttyS0 \#(marker)$"#, timeout: 10)
        try vm.waitFor(#"BIOS-e820: \[mem 0x0000000000100000-0x000000001fffffff\] usable"#, timeout: 10)
        try vm.waitFor(#"ACPI: XSDT 0x[0-9A-F]+ .*SWIFTC"#, timeout: 60)
    }
}
