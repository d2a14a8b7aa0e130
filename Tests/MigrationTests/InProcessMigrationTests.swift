import Config
import Foundation
import Hypervisor
import Logging
import TestSupport
import VMM
import XCTest

/// Two VMMs in this process, driven through their command API: the progress each exposes, and a VM
/// that was paused at the source arriving paused (CompletePaused).
final class InProcessMigrationTests: XCTestCase {
    override func setUpWithError() throws {
        try Require.kvm()
        try Require.checkguest()
    }

    private func makeVmm() throws -> Vmm {
        let vmm = Vmm(kvm: try KVM(), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        vmm.start()
        return vmm
    }

    func testProgressOnBothSidesAndAPausedVMArrivesPaused() throws {
        var config = VmConfig()
        config.cpus.boot_vcpus = 2
        config.cpus.max_vcpus = 2
        config.memory.size = 128 << 20
        config.payload = PayloadConfig(kernel: Paths.checkguest.path, cmdline: "workload=memcheck:8,counter", initramfs: nil, firmware: nil)
        // The serial port goes to a file, to know when the guest has filled its memory (MEMSUM).
        let dir = try ScratchDirectory("inproc")
        let serialLog = dir.file("serial.log")
        config.serial = ConsoleConfig(mode: .File, file: serialLog)
        config.console.mode = .Off
        let source = try makeVmm()
        let destination = try makeVmm()
        XCTAssertNil(source.migrationProgress)
        XCTAssertNoThrow(try source.send(.create(config)).get())
        XCTAssertNoThrow(try source.send(.boot).get())
        let deadline = Date().addingTimeInterval(30)
        while !((try? String(contentsOfFile: serialLog, encoding: .utf8)) ?? "").contains("MEMSUM "), Date() < deadline {
            usleep(20_000)
        }
        XCTAssertNoThrow(try source.send(.pause).get())

        let port = try freePort()
        let received = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var receiveResult: Result<VmmResponse, VmmError>?
        Thread {
            receiveResult = destination.send(.receiveMigration(ReceiveMigrationData(receiver_url: "tcp:[::1]:\(port)")))
            received.signal()
        }.start()
        try waitForListener("tcp:[::1]:\(port)")
        XCTAssertEqual(destination.migrationProgress?.phase, .connecting)
        XCTAssertEqual(destination.migrationProgress?.role, .destination)
        XCTAssertNoThrow(try source.send(.sendMigration(SendMigrationData(destination_url: "tcp:[::1]:\(port)"))).get())
        XCTAssertEqual(received.wait(timeout: .now() + 30), .success)
        XCTAssertNoThrow(try receiveResult?.get())
        XCTAssertEqual(source.waitForExit(), 0, "the source VMM stops once its VM has moved")

        let sent = try XCTUnwrap(source.migrationProgress)
        XCTAssertEqual(sent.role, .source)
        XCTAssertEqual(sent.phase, .completed)
        XCTAssertEqual(sent.url, "tcp:[::1]:\(port)")
        XCTAssertEqual(sent.memory_bytes, 128 << 20)
        XCTAssertEqual(sent.downtime_limit_ms, 300)
        XCTAssertEqual(sent.iteration, 0, "a paused VM dirties nothing")
        XCTAssertGreaterThan(sent.data_pages, 2048, "the 8 MiB the guest filled, at least")
        XCTAssertEqual(sent.data_pages + sent.zero_pages, 32768, "every page once")
        XCTAssertNotNil(sent.downtime_ms)
        XCTAssertNil(sent.error)
        let got = try XCTUnwrap(destination.migrationProgress)
        XCTAssertEqual(got.phase, .completed)
        XCTAssertEqual(got.transferred_bytes, sent.transferred_bytes, "both sides count the same bytes")
        XCTAssertEqual(got.memory_bytes, 128 << 20)

        guard case let .info(info) = try destination.send(.info).get() else { return XCTFail("vm.info") }
        XCTAssertEqual(info.state, .Paused, "a VM paused at the source stays paused")
        XCTAssertNoThrow(try destination.send(.resume).get())
        guard case let .info(resumed) = try destination.send(.info).get() else { return XCTFail("vm.info") }
        XCTAssertEqual(resumed.state, .Running)
        _ = destination.send(.shutdownVmm)
        XCTAssertEqual(destination.waitForExit(), 0)
    }
}
