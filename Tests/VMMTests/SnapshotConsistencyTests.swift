import Config
import Foundation
import Snapshot
import TestSupport
@testable import VMM
import XCTest

/// A well-formed snapshot whose parts disagree (vCPU sections vs. boot_vcpus, RAM vs. memory.size) is
/// refused before any VM is built, naming the file and what disagrees.
final class SnapshotConsistencyTests: XCTestCase {
    private func write(config: VmConfig, vcpus: Int, ramBytes: Int, to dir: URL) throws {
        let writer = try SnapshotWriter(directory: dir, durable: false)
        try writer.writeConfig(try JSONEncoder().encode(config))
        for i in 0..<vcpus {
            try writer.addSection(id: "vcpu-\(i)", type: VcpuComponent.sectionType, version: 1, payload: Data("{}".utf8))
        }
        let ram = UnsafeMutableRawBufferPointer.allocate(byteCount: ramBytes, alignment: 4096)
        defer { ram.deallocate() }
        ram.initializeMemory(as: UInt8.self, repeating: 0)
        try writer.writeMemory(ranges: [(guestAddress: 0, bytes: UnsafeRawBufferPointer(ram))])
        try writer.finish()
    }

    private func config(vcpus: UInt32, memory: UInt64) -> VmConfig {
        VmConfig(cpus: CpusConfig(boot: vcpus), memory: MemoryConfig(size: memory), payload: PayloadConfig(kernel: "/k"))
    }

    func testVCPUSectionsMustMatchBootVCPUs() throws {
        let dir = try ScratchDirectory()
        try write(config: config(vcpus: 1, memory: 16 << 20), vcpus: 2, ramBytes: 16 << 20, to: dir.url)
        XCTAssertThrowsError(try SnapshotOps.open("file://\(dir.path)")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("state.bin") && text.contains("boot_vcpus=1") && text.contains("vcpu-1"), text)
        }
    }

    func testRAMMustMatchMemorySize() throws {
        let dir = try ScratchDirectory()
        try write(config: config(vcpus: 1, memory: 32 << 20), vcpus: 1, ramBytes: 16 << 20, to: dir.url)
        XCTAssertThrowsError(try SnapshotOps.open("file://\(dir.path)")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("memory.bin") && text.contains("memory.size=33554432"), text)
        }
    }

    func testOnlyFileURLs() {
        XCTAssertThrowsError(try SnapshotOps.directory(from: "http://example/x"))
        XCTAssertThrowsError(try SnapshotOps.directory(from: "/plain/path"))
        XCTAssertEqual(try SnapshotOps.directory(from: "file:///tmp/snap").path, "/tmp/snap")
    }
}
