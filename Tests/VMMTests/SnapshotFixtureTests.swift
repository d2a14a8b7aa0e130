import Foundation
import TestSupport
import XCTest

/// Every committed snapshot format version (snapshots/fixtures/v*) keeps restoring, in both memory restore
/// modes, and the guest in it verifies itself: the memory sum it printed before the snapshot, TICKs
/// continuing, `check` ok.
final class SnapshotFixtureTests: XCTestCase {
    func testEveryFixtureVersionRestores() throws {
        try Require.kvm()
        let fixtures = Paths.root.appendingPathComponent("snapshots/fixtures")
        let versions = try FileManager.default.contentsOfDirectory(atPath: fixtures.path).filter { $0.hasPrefix("v") }.sorted()
        XCTAssertFalse(versions.isEmpty, "no fixtures in \(fixtures.path)")
        for version in versions {
            let dir = fixtures.appendingPathComponent(version)
            let expect = try String(contentsOf: dir.appendingPathComponent("EXPECT"), encoding: .utf8)
            var fields: [String: String] = [:]
            for line in expect.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
            }
            let lastTick = try XCTUnwrap(Int(fields["last_tick"] ?? ""), "\(version)/EXPECT")
            let memsum = try XCTUnwrap(fields["memsum_line"], "\(version)/EXPECT")
            let sum = try XCTUnwrap(memsum.split(separator: " ").first { $0.hasPrefix("sum=") })

            for mode in ["copy", "ondemand"] {
                let vm = try GuestProcess.vmm(["--restore", "source_url=file://\(dir.path),memory_restore_mode=\(mode),resume=true"])
                defer { vm.stop() }
                let next = Int(try vm.waitFor(#"^TICK (\d+) "#, timeout: 10)[1])!
                XCTAssertEqual(next, lastTick + 1, "\(version) \(mode): TICKs must continue")
                vm.send("sum\n")
                try vm.waitFor(#"^MEMSUM pages=\d+ \#(sum)\b"#, timeout: 10)
                vm.send("check\n")
                try vm.waitFor(#"^CHECK ok\b"#, timeout: 10)
                XCTAssertFalse(vm.allOutput.contains("GUEST-BOOTED"), "\(version) \(mode): the guest rebooted")
            }
        }
    }
}
