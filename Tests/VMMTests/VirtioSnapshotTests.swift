import Foundation
import TestSupport
import XCTest

/// Snapshot/restore with virtio devices busy: the disk workload runs on one vCPU while the other
/// verifies memory; after the restore, the guest re-reads every block it wrote before (`blkcheck`), its
/// workload goes on, memory verifies, TICKs continue — no request was lost or replayed — and the
/// network and vsock (fresh host ends, as in CH) work again. The guest moved its BARs above 4 GiB
/// (`pci_bar64=`): the restored VM maps them, and their ioeventfds, where the guest put them.
final class VirtioSnapshotTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    func testSnapshotAndRestoreWithTheDiskWorkloadRunning() throws {
        let dir = try ScratchDirectory()
        let disk = dir.file("disk.img"), snap = dir.file("snap")
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: nil))
        XCTAssertEqual(truncate(disk, 32 << 20), 0)
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let socket = dir.file("src.sock"), vsock = dir.file("vsock")
        let source = try GuestProcess.checkguest(cpus: 2, cmdline: "workload=blk:8,memcheck:16 pci_bar64=0x800000000",
                                                 extra: ["--disk", "path=\(disk)", "--api-socket", "path=\(socket)",
                                                         "--net", VirtioNetworkingTests.netOption, "--vsock", "cid=3,socket=\(vsock)"])
        defer { source.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        try source.waitFor(#"^VIRTIO dev=blk .* common=0x800000000 "#, timeout: 30)
        try source.waitFor(#"^NET ok"#, timeout: 30)
        try source.waitFor(#"^BLK ok written=\d+ gen=[3-9]"#, timeout: 30)
        let tree = (try api.get("vm.info").json as? [String: Any])?["device_tree"] as? [String: [String: Any]]
        let bar = ((tree?["_virtio-pci-_disk0"]?["resources"] as? [[String: Any]])?.first?["PciBar"] as? [String: Any])?["base"]
        XCTAssertEqual(bar as? Int, 0x8_0000_0000, "vm.info shows the BAR where the guest moved it")
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        let reply = try api.put("vm.snapshot", #"{"destination_url":"file://\#(snap)"}"#)
        XCTAssertEqual(reply.status, 204, reply.body)
        let generations = source.allLines.compactMap { line -> Int? in
            guard let r = line.range(of: #"^BLK ok written=\d+ gen=(\d+)"#, options: .regularExpression) else { return nil }
            return Int(line[r].split(separator: "=").last ?? "")
        }
        let lastGeneration = try XCTUnwrap(generations.last)
        let lastTick = source.allLines.last { $0.hasPrefix("TICK ") }.flatMap { Int($0.split(separator: " ")[1]) }
        kill(source.process.processIdentifier, SIGKILL)
        _ = source.waitForExit(timeout: 5)

        let socket2 = dir.file("dst.sock")
        let restored = try GuestProcess.vmm(["--api-socket", "path=\(socket2)", "--restore", "source_url=file://\(snap),resume=true"])
        defer { restored.stop() }
        let api2 = RESTClient(socket: socket2)
        try api2.waitUntilUp()
        // The workload continues from the generation it had reached: no reboot, no lost state.
        let next = try restored.waitFor(#"^BLK ok written=\d+ gen=(\d+)"#, timeout: 30)
        XCTAssertGreaterThan(Int(next[1])!, lastGeneration - 1)
        restored.send("blkcheck\n")
        try restored.waitFor(#"^BLK ok verified=\d+"#, timeout: 30)
        restored.send("check\n")
        try restored.waitFor(#"^CHECK ok\b"#, timeout: 30)
        restored.send("netcheck\n")
        try restored.waitFor(#"^NET ok"#, timeout: 15)
        let message = Array("after restore\n".utf8)
        XCTAssertEqual(try HybridVsockClient(socket: vsock, port: 1234).echo(message), message)
        if let lastTick {
            let tick = Int(try restored.waitFor(#"^TICK (\d+) "#, timeout: 10)[1])!
            XCTAssertGreaterThan(tick, lastTick, "TICKs continue")
        }
        let out = restored.allOutput
        XCTAssertFalse(out.contains("GUEST-BOOTED"), out)
        XCTAssertFalse(out.contains("BLK bad"), out)
        XCTAssertFalse(out.contains("CHECK bad"), out)
        XCTAssertFalse(out.contains("PANIC"), out)
        let counters = try XCTUnwrap(try api2.get("vm.counters").json as? [String: [String: Int]])
        XCTAssertGreaterThan(counters["_disk0"]?["write_bytes"] ?? 0, 0, "the restored disk serves the guest: \(counters)")
    }
}
