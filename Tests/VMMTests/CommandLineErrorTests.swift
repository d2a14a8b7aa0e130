import Foundation
import TestSupport
import XCTest

/// Bad input on the command line: one clear error line naming the problem, a non-zero exit, no hang.
final class CommandLineErrorTests: XCTestCase {
    private func expectError(_ arguments: [String], mentioning needles: [String],
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let vmm = try GuestProcess.vmm(arguments)
        guard let status = vmm.waitForExit(timeout: 20) else {
            XCTFail("cloud-hypervisor hung on \(arguments)", file: file, line: line)
            return
        }
        XCTAssertNotEqual(status, 0, "exit status for \(arguments)", file: file, line: line)
        let output = vmm.allOutput
        for needle in needles {
            XCTAssertTrue(output.contains(needle), "'\(needle)' missing from: \(output)", file: file, line: line)
        }
        XCTAssertFalse(output.contains("Fatal error"), "crashed: \(output)", file: file, line: line)
    }

    private var kernel: String { Paths.checkguest.path }

    func testUnknownSubOption() throws {
        try expectError(["--kernel", kernel, "--memory", "sise=1G"], mentioning: ["--memory", "unknown option 'sise'"])
        try expectError(["--kernel", kernel, "--cpus", "boot=1,turbo=on"], mentioning: ["--cpus", "'turbo'"])
    }

    func testBadSizeAndBadBoolean() throws {
        try expectError(["--kernel", kernel, "--memory", "size=12X"], mentioning: ["--memory", "'12X'"])
        try expectError(["--kernel", kernel, "--memory", "size=1G,shared=perhaps"], mentioning: ["'perhaps'"])
    }

    func testMissingKernel() throws {
        try Require.kvm()
        try expectError(["--kernel", "/nonexistent/vmlinux"], mentioning: ["/nonexistent/vmlinux"])
    }

    func testKernelThatIsNeitherELFNorBzImage() throws {
        try Require.kvm()
        let junk = FileManager.default.temporaryDirectory.appendingPathComponent("junk-kernel-\(getpid())")
        try Data(repeating: 0x5A, count: 8192).write(to: junk)
        defer { try? FileManager.default.removeItem(at: junk) }
        try expectError(["--kernel", junk.path], mentioning: [junk.path])
    }

    func testMemoryTooSmall() throws {
        try expectError(["--kernel", kernel, "--memory", "size=1M"], mentioning: ["too small"])
    }

    func testMoreBootThanMaxVCPUs() throws {
        try expectError(["--kernel", kernel, "--cpus", "boot=4,max=2"], mentioning: ["boot_vcpus", "max_vcpus"])
    }

    func testBadSerialMode() throws {
        try expectError(["--kernel", kernel, "--serial", "loud"], mentioning: ["--serial", "'loud'"])
    }

    /// As Cloud Hypervisor: the virtio-console defaults to tty, so `--serial tty` alone is refused.
    func testSerialAndConsoleBothOnTheTerminal() throws {
        try expectError(["--kernel", kernel, "--serial", "tty"], mentioning: ["both serial and virtio-console"])
    }

    func testUnreadableLogFile() throws {
        try expectError(["--kernel", kernel, "--log-file", "/nonexistent/dir/log"], mentioning: ["/nonexistent/dir/log"])
    }
}

/// Devices this VMM does not build yet are refused, never silently left out of the guest.
final class UnsupportedDeviceTests: XCTestCase {
    func testConfiguredPmemAndFsAreRefusedAtBoot() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
        let dir = try ScratchDirectory()
        let socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        defer { vmm.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        let body = #"{"payload":{"kernel":"\#(Paths.checkguest.path)"},"console":{"mode":"Off"},"memory":{"size":268435456,"shared":true},"pmem":[{"file":"/tmp/x.raw"}],"fs":[{"tag":"t","socket":"/tmp/fs.sock"}]}"#
        XCTAssertEqual(try api.put("vm.create", body).status, 204, "create only stores the config, as CH")
        let boot = try api.put("vm.boot")
        XCTAssertEqual(boot.status, 400, boot.body)
        XCTAssertTrue(boot.body.contains("pmem") && boot.body.contains("fs"), boot.body)
        XCTAssertEqual(try api.get("vmm.ping").status, 200)
    }
}
