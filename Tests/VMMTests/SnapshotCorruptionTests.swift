import Foundation
import TestSupport
import XCTest

/// Damaged snapshots are refused with an error naming the file (and section or chunk) — never a crash,
/// never a half-restored guest that runs.
final class SnapshotCorruptionTests: XCTestCase {
    /// One small snapshot shared by every case (a 16 MiB guest with a memcheck region).
    nonisolated(unsafe) private static var pristine: ScratchDirectory?

    private func snapshot() throws -> String {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
        if let dir = Self.pristine { return dir.file("snap") }
        let dir = try ScratchDirectory("corruption")
        let snap = dir.file("snap")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let socket = dir.file("api.sock")
        let guest = try GuestProcess.checkguest(cpus: 2, memory: "16M", cmdline: "workload=memcheck:4,counter",
                                                extra: ["--api-socket", "path=\(socket)"])
        defer { guest.stop() }
        let api = RESTClient(socket: socket)
        try api.waitUntilUp()
        try guest.waitFor(#"^MEMSUM "#, timeout: 20)
        XCTAssertEqual(try api.put("vm.pause").status, 204)
        XCTAssertEqual(try api.put("vm.snapshot", #"{"destination_url":"file://\#(snap)"}"#).status, 204)
        Self.pristine = dir
        return snap
    }

    /// Copies the snapshot, damages the copy, restores it: must fail fast with `needles` in the error.
    private func expectRefused(_ name: String, mentioning needles: [String],
                               file: StaticString = #filePath, line: UInt = #line,
                               damage: (String) throws -> Void) throws {
        let source = try snapshot()
        let dir = try ScratchDirectory("damaged-\(name)")
        let copy = dir.file("snap")
        try FileManager.default.copyItem(atPath: source, toPath: copy)
        try damage(copy)
        let vmm = try GuestProcess.vmm(["--restore", "source_url=file://\(copy),resume=true"])
        guard let status = vmm.waitForExit(timeout: 30) else {
            vmm.stop()
            XCTFail("\(name): restore hung", file: file, line: line)
            return
        }
        let out = vmm.allOutput
        XCTAssertNotEqual(status, 0, "\(name): \(out)", file: file, line: line)
        XCTAssertFalse(out.contains("TICK"), "\(name): the damaged guest ran: \(out)", file: file, line: line)
        XCTAssertFalse(out.contains("Fatal error"), "\(name): crashed: \(out)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(out.contains(needle), "\(name): '\(needle)' missing from: \(out)", file: file, line: line)
        }
    }

    private func size(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
    }

    private func truncate(_ path: String, to length: Int) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: UInt64(length))
        try h.close()
    }

    private func flip(_ path: String, at offset: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[offset] ^= 0x5A
        try data.write(to: URL(fileURLWithPath: path))
    }

    func testTruncatedStateFile() throws {
        for fraction in [0.0, 0.001, 0.5, 0.999] {
            try expectRefused("state-trunc-\(fraction)", mentioning: ["state.bin"]) { dir in
                let path = dir + "/state.bin"
                try truncate(path, to: Int(Double(try size(path)) * fraction))
            }
        }
    }

    func testTruncatedMemoryFile() throws {
        for fraction in [0.0, 0.3, 0.999] {
            try expectRefused("memory-trunc-\(fraction)", mentioning: ["memory.bin"]) { dir in
                let path = dir + "/memory.bin"
                try truncate(path, to: Int(Double(try size(path)) * fraction))
            }
        }
    }

    func testFlippedBytes() throws {
        try expectRefused("state-header", mentioning: ["state.bin", "header"]) { try flip($0 + "/state.bin", at: 20) }
        try expectRefused("state-section", mentioning: ["state.bin", "vcpu-"]) { dir in
            // Inside the first vCPU section's payload (the largest sections).
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/state.bin"))
            let marker = Data("regs".utf8)   // the key of the registers' entry
            let at = data.range(of: marker)!.lowerBound + 10
            try flip(dir + "/state.bin", at: at)
        }
        try expectRefused("memory-chunk", mentioning: ["memory.bin", "chunk"]) { dir in
            let path = dir + "/memory.bin"
            try flip(path, at: try size(path) / 2)
        }
        try expectRefused("memory-header", mentioning: ["memory.bin"]) { try flip($0 + "/memory.bin", at: 4) }
    }

    func testNewerFormatVersion() throws {
        try expectRefused("version", mentioning: ["state.bin", "version"]) { dir in
            var data = try Data(contentsOf: URL(fileURLWithPath: dir + "/state.bin"))
            data[8] = 9
            try data.write(to: URL(fileURLWithPath: dir + "/state.bin"))
        }
    }

    func testForeignAndMissingFiles() throws {
        try expectRefused("foreign-state", mentioning: ["state.bin"]) { dir in
            try Data((0..<4096).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: dir + "/state.bin"))
        }
        try expectRefused("missing-memory", mentioning: ["memory.bin"]) { dir in
            try FileManager.default.removeItem(atPath: dir + "/memory.bin")
        }
        try expectRefused("config-garbage", mentioning: ["config.json"]) { dir in
            try Data("{not json".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        }
    }

    func testEditedConfigIsRefused() throws {
        try expectRefused("vcpu-count", mentioning: ["config.json"]) { dir in
            let url = URL(fileURLWithPath: dir + "/config.json")
            let text = try String(contentsOf: url, encoding: .utf8)
                .replacingOccurrences(of: #""boot_vcpus" : 2"#, with: #""boot_vcpus" : 1"#)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }
}
