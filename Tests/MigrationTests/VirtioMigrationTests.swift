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
