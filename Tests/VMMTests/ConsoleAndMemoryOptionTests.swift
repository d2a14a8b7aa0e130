import Foundation
import TestSupport
import XCTest

/// `--memory shared/prefault/hugepages` and the serial sinks other than the terminal.
final class ConsoleAndMemoryOptionTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
    }

    func testSharedPrefaultedMemoryBootsAndVerifies() throws {
        let guest = try GuestProcess.vmm(["--kernel", Paths.checkguest.path, "--cpus", "boot=2",
                                          "--memory", "size=256M,shared=on,prefault=on", "--serial", "tty",
                                          "--console", "off", "--cmdline", "workload=memcheck:32"])
        defer { guest.stop() }
        try guest.waitFor(#"^GUEST-BOOTED cpus=2 mem_kib=262144"#, timeout: 20)
        try guest.waitFor(#"^MEMSUM "#, timeout: 20)
        guest.send("check\n")
        try guest.waitFor(#"^CHECK ok"#, timeout: 20)
    }

    /// With hugepages reserved the guest boots on them; without, the error says how to reserve them.
    func testHugepages() throws {
        let reserved = Int((try? String(contentsOfFile: "/proc/sys/vm/nr_hugepages", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0
        let guest = try GuestProcess.vmm(["--kernel", Paths.checkguest.path, "--memory", "size=64M,hugepages=on",
                                          "--serial", "tty", "--console", "off", "--cmdline", "workload=idle"])
        defer { guest.stop() }
        if reserved * 2 >= 64 {
            try guest.waitFor(#"^GUEST-BOOTED "#, timeout: 20)
        } else {
            XCTAssertNotEqual(guest.waitForExit(timeout: 10), 0)
            XCTAssertTrue(guest.allOutput.contains("nr_hugepages"), guest.allOutput)
        }
    }

    func testSerialToFile() throws {
        let dir = try ScratchDirectory()
        let log = dir.file("serial.log")
        let guest = try GuestProcess.vmm(["--kernel", Paths.checkguest.path, "--serial", "file=\(log)",
                                          "--console", "off", "--cmdline", "workload=poweroff"])
        XCTAssertEqual(guest.waitForExit(timeout: 20), 0, guest.allOutput)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(text.contains("GUEST-BOOTED cpus=1"), text)
        XCTAssertFalse(guest.allOutput.contains("GUEST-BOOTED"), "file mode must not print on stdout")
    }

    func testSerialOverUnixSocketBothWays() throws {
        let dir = try ScratchDirectory()
        let path = dir.file("serial.sock")
        let guest = try GuestProcess.vmm(["--kernel", Paths.checkguest.path, "--serial", "socket=\(path)",
                                          "--console", "off", "--cmdline", "workload=memcheck:8"])
        defer { guest.stop() }
        var waited = 0
        while !FileManager.default.fileExists(atPath: path) && waited < 200 { usleep(10_000); waited += 1 }
        let client = try GuestProcess(executable: try Require.tool("python3"), arguments: ["-u", "-c", """
            import socket, sys, threading
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            def pump():
                for line in sys.stdin: s.sendall(line.encode())
            threading.Thread(target=pump, daemon=True).start()
            while True:
                d = s.recv(4096)
                if not d: break
                sys.stdout.write(d.decode(errors="replace")); sys.stdout.flush()
            """, path])
        defer { client.stop() }
        try client.waitFor(#"^(TICK|MEMCHECK|MEMSUM) "#, timeout: 20)
        client.send("check\n")
        try client.waitFor(#"^CHECK ok"#, timeout: 20)
    }

    func testSerialOnAPty() throws {
        let guest = try GuestProcess.vmm(["-v", "--kernel", Paths.checkguest.path, "--serial", "pty",
                                          "--console", "off", "--cmdline", "workload=idle"])
        defer { guest.stop() }
        let pty = try guest.waitFor(#"serial pty: (/dev/pts/\d+)"#, timeout: 10)[1]
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: pty))
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while !text.contains("TICK") && Date() < deadline {
            text += String(decoding: handle.availableData, as: UTF8.self)
        }
        XCTAssertTrue(text.contains("TICK"), text)
    }

    func testVersion() throws {
        let p = try GuestProcess.vmm(["--version"])
        XCTAssertEqual(p.waitForExit(timeout: 5), 0)
        XCTAssertTrue(p.allOutput.hasPrefix("cloud-hypervisor v"), p.allOutput)
    }
}
