import XCTest
@testable import Config

/// Restore and migration bodies: CH writes them without `skip_serializing_none` (vmm/src/config.rs
/// RestoreConfig, vmm/src/api/mod.rs VmSendMigrationData/VmReceiveMigrationData), so unset options are `null`.
final class RestoreMigrationTests: XCTestCase {
    func testRestoreParseAndShape() throws {
        let r = try RestoreConfig.parse("source_url=file:///dir,prefault=on,resume=true")
        assertJSON(r, equals: """
            {"source_url":"file:///dir","prefault":true,"memory_restore_mode":"Copy","net_fds":null,"vfio_fds":null,
             "iommufd_fd":null,"resume":true,"zone_updates":[]}
            """)
        let full = try RestoreConfig.parse("source_url=file:///d,memory_restore_mode=ondemand,net_fds=[net0@[3,4]],"
                                           + "vfio_fds=[v0@5],iommufd_fd=6,zone_updates=[mem0@1]")
        XCTAssertEqual(full.memory_restore_mode, .OnDemand)
        XCTAssertEqual(full.net_fds, [RestoredNetConfig(id: "net0", fds: [3, 4])])
        XCTAssertEqual(full.net_fds?.first?.num_fds, 2)
        XCTAssertEqual(full.vfio_fds, [RestoredVfioConfig(id: "v0", fd: 5)])
        XCTAssertEqual(full.zone_updates, [VmMemoryZoneUpdateData(id: "mem0", host_numa_node: 1)])
        XCTAssertThrowsError(try RestoreConfig.parse("source_url=file:///d,memory_restore_mode=lazy"))
        XCTAssertThrowsError(try RestoreConfig.parse("source_url=file:///d,net_fds=net0@3"))
    }

    /// `durable` is ours: CH's body (and what ch-remote sends) has only the URL, and it still decodes.
    func testSnapshotDurableIsOptional() throws {
        assertJSON(VmSnapshotConfig(destination_url: "file:///s"), equals: #"{"destination_url":"file:///s"}"#)
        XCTAssertNil(try decodeJSON(VmSnapshotConfig.self, #"{"destination_url":"file:///s"}"#).durable)
        XCTAssertEqual(try decodeJSON(VmSnapshotConfig.self, #"{"destination_url":"file:///s","durable":false}"#).durable, false)
    }

    func testRestoreDecodeDefaults() throws {
        let r = try decodeJSON(RestoreConfig.self, #"{"source_url":"file:///d","net_fds":[{"id":"n","num_fds":1,"fds":[9]}]}"#)
        XCTAssertEqual(r, {
            var expected = RestoreConfig(source_url: "file:///d")
            expected.net_fds = [RestoredNetConfig(id: "n", fds: [-1])]
            return expected
        }())
        assertDecodingFails(RestoreConfig.self, #"{"prefault":true}"#, naming: "source_url")
    }

    func testSendMigration() throws {
        let s = try SendMigrationData.parse("destination_url=unix:/tmp/m.sock,local=on")
        assertJSON(s, equals: """
            {"destination_url":"unix:/tmp/m.sock","local":true,"preserve_source":false,"downtime_ms":300,
             "timeout_s":3600,"timeout_strategy":"Cancel","connections":1,"tls_dir":null,"memory_mode":"Precopy"}
            """)
        // The bare URL of CH before v52 still works.
        XCTAssertEqual(try SendMigrationData.parse("tcp:10.0.0.2:6000").destination_url, "tcp:10.0.0.2:6000")
        let tuned = try SendMigrationData.parse("destination_url=tcp:[::1]:6000,downtime_ms=100,timeout_s=60,"
                                                + "timeout_strategy=ignore,connections=4")
        XCTAssertEqual(tuned.downtime_ms, 100)
        XCTAssertEqual(tuned.timeout_strategy, .Ignore)
        XCTAssertEqual(tuned.connections, 4)
        // Beyond CH: auto_converge, on unless turned off, and only then in the JSON (the default body stays CH's).
        XCTAssertTrue(tuned.auto_converge)
        let off = try SendMigrationData.parse("destination_url=unix:/s,auto_converge=off")
        XCTAssertFalse(off.auto_converge)
        assertJSON(off, equals: """
            {"destination_url":"unix:/s","local":false,"preserve_source":false,"downtime_ms":300,"timeout_s":3600,
             "timeout_strategy":"Cancel","connections":1,"tls_dir":null,"memory_mode":"Precopy","auto_converge":false}
            """)
        XCTAssertEqual(try decodeJSON(SendMigrationData.self, #"{"destination_url":"unix:/s","auto_converge":false}"#), off)
        XCTAssertThrowsError(try SendMigrationData.parse("destination_url=unix:/s,auto_converge=maybe"))
        for bad in ["destination_url=file:///x", "destination_url=tcp:host", "destination_url=unix:",
                    "destination_url=tcp:h:1,local=on", "destination_url=unix:/s,connections=2",
                    "destination_url=tcp:h:1,connections=129", "destination_url=unix:/s,downtime_ms=0",
                    "destination_url=unix:/s,preserve_source=on", "local=on"] {
            XCTAssertThrowsError(try SendMigrationData.parse(bad), bad)
        }
        assertDecodingFails(SendMigrationData.self, #"{"destination_url":"unix:/s","downtime_ms":0}"#, naming: "downtime_ms")
        XCTAssertEqual(try decodeJSON(SendMigrationData.self, #"{"destination_url":"unix:/s"}"#),
                       SendMigrationData(destination_url: "unix:/s"))
    }

    /// Beyond CH: compression, none unless asked for, and only then in the JSON.
    func testSendMigrationCompression() throws {
        let zstd = try SendMigrationData.parse("destination_url=tcp:h:1,compression=zstd,compression_level=3")
        XCTAssertEqual(zstd.compression, .zstd)
        XCTAssertEqual(zstd.compression_level, 3)
        assertJSON(zstd, equals: """
            {"destination_url":"tcp:h:1","local":false,"preserve_source":false,"downtime_ms":300,"timeout_s":3600,
             "timeout_strategy":"Cancel","connections":1,"tls_dir":null,"memory_mode":"Precopy","compression":"zstd",
             "compression_level":3}
            """)
        XCTAssertEqual(try decodeJSON(SendMigrationData.self, #"{"destination_url":"tcp:h:1","compression":"zstd","compression_level":3}"#), zstd)
        XCTAssertEqual(try SendMigrationData.parse("tcp:h:1").compression, MigrationCompression.none)
        for bad in ["destination_url=tcp:h:1,compression=lz4", "destination_url=unix:/s,local=on,compression=zstd",
                    "destination_url=tcp:h:1,compression_level=3"] {
            XCTAssertThrowsError(try SendMigrationData.parse(bad), bad)
        }
        assertDecodingFails(SendMigrationData.self, #"{"destination_url":"unix:/s","compression":"lz4"}"#, naming: "compression")
    }

    func testReceiveMigration() throws {
        let r = try ReceiveMigrationData.parse("receiver_url=unix:/tmp/ch=migrate.sock")
        XCTAssertEqual(r.receiver_url, "unix:/tmp/ch=migrate.sock")
        assertJSON(r, equals: """
            {"receiver_url":"unix:/tmp/ch=migrate.sock","tls_dir":null,"memory_mode":"Precopy","vfio_fds":null,
             "iommufd_fd":null,"zone_updates":[]}
            """)
        XCTAssertEqual(try ReceiveMigrationData.parse("tcp:0.0.0.0:6000").receiver_url, "tcp:0.0.0.0:6000")
        XCTAssertEqual(try ReceiveMigrationData.parse("receiver_url=tcp:h:1,memory_mode=postcopy").memory_mode, .Postcopy)
        XCTAssertThrowsError(try ReceiveMigrationData.parse("receiver_url=unix:/s,tls_dir=/certs"))
        XCTAssertThrowsError(try ReceiveMigrationData.parse("receiver_url=http://x"))
    }

    func testResizeWritesNullsAsCH() {
        assertJSON(VmResize(desired_vcpus: 2), equals: #"{"desired_vcpus":2,"desired_ram":null,"desired_balloon":null}"#)
    }
}
