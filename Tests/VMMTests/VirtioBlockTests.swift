import Foundation
import TestSupport
import XCTest

/// virtio-blk and virtio-rng as the checkguest sees them: it writes a pattern across the disk, reads it
/// back and verifies it (`BLK ok`), reads entropy (`RNG ok`), and counts its MSI-X interrupts.
final class VirtioBlockTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    private func image(_ dir: ScratchDirectory, _ name: String = "disk.img", size: Int = 32 << 20) throws -> String {
        let path = dir.file(name)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        XCTAssertEqual(truncate(path, off_t(size)), 0)
        return path
    }

    private func counter(_ api: RESTClient, _ device: String, _ name: String) throws -> Int {
        let counters = try XCTUnwrap(try api.get("vm.counters").json as? [String: [String: Int]])
        return try XCTUnwrap(counters[device]?[name], "\(device).\(name) in \(counters)")
    }

    /// CLI-configured disk and rng: the guest's own verification, interrupts delivered by irqfd, the
    /// disk's counters in `vm.counters`, the device tree in `vm.info`, and the bytes on the host file.
    func testDiskAndRngFromTheCommandLine() throws {
        let dir = try ScratchDirectory()
        let disk = try image(dir)
        let socket = dir.file("api.sock")
        let guest = try GuestProcess.checkguest(cpus: 2, cmdline: "workload=blk:8,counter",
                                                extra: ["--disk", "path=\(disk),serial=swift-disk-1", "--api-socket", "path=\(socket)"])
        defer { guest.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        try guest.waitFor(#"^BLK id=swift-disk-1\b"#, timeout: 20)
        try guest.waitFor(#"^RNG ok\b"#, timeout: 20)
        try guest.waitFor(#"^BLK ok written=\d+ gen=[2-9]"#, timeout: 30)
        guest.send("blkcheck\n")
        try guest.waitFor(#"^BLK ok verified=\d+"#, timeout: 30)
        guest.send("rngcheck\n")
        try guest.waitFor(#"^RNG ok bytes=\d+ total=512"#, timeout: 10)
        XCTAssertFalse(guest.allOutput.contains("BLK bad"), guest.allOutput)

        let written = try counter(api, "_disk0", "write_bytes")
        XCTAssertGreaterThan(written, 0)
        XCTAssertGreaterThan(try counter(api, "_disk0", "read_ops"), 0)
        try guest.waitFor(#"^BLK ok written="#, timeout: 10)
        XCTAssertGreaterThan(try counter(api, "_disk0", "write_bytes"), written, "counters keep counting")

        let info = try XCTUnwrap(try api.get("vm.info").json as? [String: Any])
        let tree = try XCTUnwrap(info["device_tree"] as? [String: [String: Any]])
        XCTAssertEqual(tree["_virtio-pci-_disk0"]?["pci_bdf"] as? String, "0000:00:01.0")
        XCTAssertEqual(tree["_virtio-pci-__rng"]?["pci_bdf"] as? String, "0000:00:02.0")
        XCTAssertEqual(tree["_disk0"]?["parent"] as? String, "_virtio-pci-_disk0")

        // The guest's data really is in the host file (not only in some cache of ours).
        let bytes = try Data(contentsOf: URL(fileURLWithPath: disk)).prefix(1 << 20)
        XCTAssertTrue(bytes.contains { $0 != 0 }, "the first MiB of the image holds the guest's pattern")
    }

    /// `vm.create` without disks, then `vm.add-disk` before boot (204; a duplicate id is a 409), then boot:
    /// the disks are there with their ids, and a read-only disk is offered read-only (the checkguest
    /// drives the first disk only, here the read-only one).
    func testDisksAddedThroughTheAPIBeforeBoot() throws {
        let dir = try ScratchDirectory()
        let disk = try image(dir), readOnly = try image(dir, "ro.img")
        let socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        defer { vmm.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        let create = try api.put("vm.create", #"""
            {"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":268435456},
             "payload":{"kernel":"\#(Paths.checkguest.path)","cmdline":"workload=blk:4,counter"},
             "serial":{"mode":"Tty"},"console":{"mode":"Off"}}
            """#)
        XCTAssertEqual(create.status, 204, create.body)
        XCTAssertEqual(try api.put("vm.add-disk", #"{"path":"\#(readOnly)","readonly":true,"id":"data"}"#).status, 204)
        let duplicate = try api.put("vm.add-disk", #"{"path":"\#(disk)","id":"data"}"#)
        XCTAssertEqual(duplicate.status, 409, duplicate.body)
        XCTAssertEqual(try api.put("vm.add-disk", #"{"path":"\#(disk)"}"#).status, 204)
        XCTAssertEqual(try api.put("vm.boot").status, 204)
        try vmm.waitFor(#"^GUEST-BOOTED"#, timeout: 20)
        try vmm.waitFor(#"^BLK ro read=[1-9]"#, timeout: 30)
        XCTAssertEqual(try counter(api, "data", "write_bytes"), 0, "nothing was written to the read-only disk")
        XCTAssertGreaterThan(try counter(api, "data", "read_bytes"), 0)
        XCTAssertEqual(try counter(api, "_disk0", "read_ops"), 0, "the generated id names the second disk")
        let config = try XCTUnwrap((try api.get("vm.info").json as? [String: Any])?["config"] as? [String: Any])
        XCTAssertEqual((config["disks"] as? [[String: Any]])?.compactMap { $0["id"] as? String }, ["data", "_disk0"])
        let hot = try api.put("vm.add-disk", #"{"path":"\#(disk)"}"#)
        XCTAssertEqual(hot.status, 500, "hot-plug is not built yet: \(hot.body)")
    }

    /// Bad disk configurations fail the boot with an error that says what to fix; nothing runs.
    func testBadDisksAreRefusedAtBoot() throws {
        let dir = try ScratchDirectory()
        let missing = try GuestProcess.checkguest(cmdline: "workload=idle", extra: ["--disk", "path=\(dir.file("nope.img"))"])
        XCTAssertNotEqual(missing.waitForExit(timeout: 10), 0)
        XCTAssertTrue(missing.allOutput.contains("does not exist"), missing.allOutput)
        XCTAssertFalse(missing.allOutput.contains("GUEST-BOOTED"))

        // A file the VMM can only read, attached writable: the message points at readonly=on. (Root ignores
        // file modes, so the file is made immutable; /var/tmp, because tmpfs has no immutable flag.)
        let locked = "/var/tmp/swiftch-locked-\(getpid()).img"
        XCTAssertTrue(FileManager.default.createFile(atPath: locked, contents: Data(count: 1 << 20)))
        defer { unlink(locked) }
        let chattr = try Require.tool("chattr")
        let set = Process()
        set.executableURL = URL(fileURLWithPath: chattr)
        set.arguments = ["+i", locked]
        try set.run()
        set.waitUntilExit()
        defer {
            let clear = Process()
            clear.executableURL = URL(fileURLWithPath: chattr)
            clear.arguments = ["-i", locked]
            try? clear.run()
            clear.waitUntilExit()
        }
        let readOnly = try GuestProcess.checkguest(cmdline: "workload=idle", extra: ["--disk", "path=\(locked)"])
        XCTAssertNotEqual(readOnly.waitForExit(timeout: 10), 0)
        XCTAssertTrue(readOnly.allOutput.contains("readonly=on"), readOnly.allOutput)

        let socket = dir.file("api.sock")
        let vmm = try GuestProcess.vmm(["--api-socket", "path=\(socket)"])
        defer { vmm.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        XCTAssertEqual(try api.put("vm.create", #"""
            {"memory":{"size":268435456},"payload":{"kernel":"\#(Paths.checkguest.path)"},
             "serial":{"mode":"Tty"},"console":{"mode":"Off"},"disks":[{"path":"\#(dir.file("gone.img"))"}]}
            """#).status, 204)
        let boot = try api.put("vm.boot")
        XCTAssertEqual(boot.status, 500, boot.body)
        XCTAssertTrue(boot.body.contains("gone.img does not exist"), boot.body)
        XCTAssertEqual((try api.get("vm.info").json as? [String: Any])?["state"] as? String, "Created")
    }
}
