import Foundation
import TestSupport
import XCTest

/// Live migration of a guest whose virtio devices are busy: the disk workload writes and verifies blocks
/// through the whole migration (the image is shared, as between two hosts with shared storage), the
/// device writes into guest memory reach the destination through the VMM's dirty bitmap, and afterwards
/// every block verifies, the network and vsock work again and the counters keep counting.
final class VirtioMigrationTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
    }

    func testMigrationWithTheDiskWorkloadRunning() throws {
        try migrateWithBusyDevices(memory: "256M", options: "")
    }

    /// The same with local migration: the devices' state travels as usual, the RAM (rings and buffers
    /// included) is the very memory the source's devices wrote into.
    func testLocalMigrationWithTheDiskWorkloadRunning() throws {
        try migrateWithBusyDevices(memory: "256M,shared=on", options: #","local":true"#)
    }

    /// Same host: the destination builds its VM, vsock device included, while memory arrives, but takes the
    /// vsock socket path over only when the migrated state is applied, after the source's pause. A
    /// destination that dies before that leaves the source its path: host clients still reach the guest.
    func testADestinationDyingBeforeThePauseLeavesTheSourceItsVsockPath() throws {
        let peers = try LivePeers()
        let vsock = peers.dir.file("vsock")
        let source = try peers.source(cmdline: "workload=memcheck:64,counter", extra: ["--vsock", "cid=3,socket=\(vsock)"])
        try source.process.waitFor(#"^MEMSUM "#, timeout: 20)
        let before = Array("before the migration\n".utf8)
        XCTAssertEqual(try HybridVsockClient(socket: vsock, port: 1234).echo(before), before)
        // 64 MiB of data at 8 MB/s: seconds of memory phase, while the destination's VM stands ready.
        let link = try peers.slowLink(bytesPerSecond: 8_000_000)
        let sent = try source.api.put("vm.send-migration", #"{"destination_url":"\#(link.slowURL)"}"#)
        XCTAssertEqual(sent.status, 204, sent.body)
        let deadline = Date().addingTimeInterval(20)
        var progress = try link.destination.api.get("vm.migration-progress")
        while !progress.body.contains(#""phase":"memory""#), Date() < deadline {
            usleep(20_000)
            progress = try link.destination.api.get("vm.migration-progress")
        }
        XCTAssertTrue(progress.body.contains(#""phase":"memory""#), progress.body)
        sleep(1)   // the VM is built within milliseconds of the Config (debug build, loaded host: well within 1 s)
        kill(link.destination.process.process.processIdentifier, SIGKILL)
        _ = try source.waitForFailure(count: 1)
        try source.assertStillRunning()
        let after = Array("after the failed migration\n".utf8)
        XCTAssertEqual(try HybridVsockClient(socket: vsock, port: 1234).echo(after), after)
        withExtendedLifetime(link) {}
    }

    private func migrateWithBusyDevices(memory: String, options: String, name: String = #function) throws {
        let peers = try LivePeers(name)
        let disk = peers.dir.file("disk.img"), vsock = peers.dir.file("vsock")
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: nil))
        XCTAssertEqual(truncate(disk, 32 << 20), 0)
        let source = try peers.source(cmdline: "workload=blk:8,memcheck:16,counter", memory: memory, extra: [
            "--disk", "path=\(disk)", "--net", "ip=192.168.249.1,mask=255.255.255.0", "--vsock", "cid=3,socket=\(vsock)",
        ])
        try source.process.waitFor(#"^BLK ok written=\d+ gen=[2-9]"#, timeout: 30)
        let (destination, finished) = try peers.migrate(source, to: peers.unixURL(), options: options)
        defer { destination.process.stop() }
        try destination.assertContinues(after: source)
        try destination.process.waitFor(#"^BLK ok written="#, timeout: 15)
        destination.process.send("blkcheck\n")
        try destination.process.waitFor(#"^BLK ok verified=\d+"#, timeout: 30)
        destination.process.send("netcheck\n")
        try destination.process.waitFor(#"^NET ok"#, timeout: 15)
        let message = Array("after migration\n".utf8)
        XCTAssertEqual(try HybridVsockClient(socket: vsock, port: 1234).echo(message), message)
        XCTAssertFalse(destination.process.allOutput.contains("BLK bad"), destination.process.allOutput)
        let counters = try XCTUnwrap(try destination.api.get("vm.counters").json as? [String: [String: Int]])
        XCTAssertGreaterThan(counters["_disk0"]?["write_bytes"] ?? 0, 0, "\(counters)")
        print("\(options.isEmpty ? "" : "local ")migration with virtio-blk/net/vsock busy: total \(finished["total_ms"] ?? "?") ms, downtime \(finished["downtime_ms"] ?? "?") ms")
    }
}
