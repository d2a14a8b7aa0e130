import Foundation
import TestSupport
import XCTest

/// The checkguest's virtio-vsock driver cannot run under QEMU here (no /dev/vhost-vsock), so it runs against
/// a simulated device on the host instead: `make -C Tests/Guest check-sim` compiles the guest's virtio and
/// vsock sources for the host (-DHOSTED_SIM, ASan + UBSan) with Tests/Guest/sim/vsock_sim.c, which emulates
/// the PCI function, the modern transport, the device side of the queues and a host peer (echo with tight
/// credit, half-close, eight connections, transport reset, vsockcheck accepted/refused/ignored/garbled),
/// with and without VIRTIO_F_EVENT_IDX.
final class CheckguestVsockSimTests: XCTestCase {
    func testVsockDriverAgainstSimulatedDevice() throws {
        if let why = Checkguest.buildProblem {
            XCTFail(why)
            return
        }
        let (status, text) = try HostCommand.run(Paths.which("make") ?? "/usr/bin/make",
                                                 ["-s", "-C", Paths.root.appendingPathComponent("Tests/Guest").path, "check-sim"])
        print(text)
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("vsock-sim: ok"), text)
        XCTAssertTrue(text.contains("vsock-sim --no-event-idx: ok"), text)
    }
}
