import Hypervisor
import XCTest

final class SystemTests: XCTestCase {
    func testOpensAndReportsCapabilities() throws {
        let kvm = try openKVM()
        XCTAssertGreaterThan(kvm.vcpuMmapSize, 4096)
        XCTAssertGreaterThan(kvm.checkExtension(KVM_CAP_IRQCHIP), 0)
        XCTAssertGreaterThan(kvm.checkExtension(KVM_CAP_IOEVENTFD), 0)
        XCTAssertGreaterThan(kvm.checkExtension(KVM_CAP_IRQFD), 0)
        XCTAssertGreaterThan(kvm.checkExtension(KVM_CAP_IMMEDIATE_EXIT), 0)
        XCTAssertEqual(kvm.checkExtension(99_999), 0, "unknown caps read as absent")
    }

    func testSupportedCPUIDHasBasicLeaves() throws {
        let cpuid = try openKVM().supportedCPUID()
        XCTAssertTrue(cpuid.contains { $0.function == 0 })
        XCTAssertTrue(cpuid.contains { $0.function == 0x8000_0001 }, "extended leaf with the long-mode bit")
    }

    func testMSRIndexListIsNotEmpty() throws {
        let msrs = try openKVM().msrIndexList()
        XCTAssertFalse(msrs.isEmpty)
        XCTAssertTrue(msrs.contains(0x10), "IA32_TIME_STAMP_COUNTER")
    }

    func testOpenFailureNamesThePath() {
        XCTAssertThrowsError(try KVM(path: "/nonexistent/kvm")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("open(/nonexistent/kvm) failed: No such file or directory"), text)
        }
    }

    func testIoctlErrorNamesTheIoctlAndErrno() throws {
        let vm = try openKVM().createVM()
        _ = try vm.createVCPU(id: 0)
        XCTAssertThrowsError(try vm.createVCPU(id: 0)) { error in
            XCTAssertEqual(error as? KVMError, .ioctl(name: "KVM_CREATE_VCPU", errno: EEXIST))
            XCTAssertTrue("\(error)".hasPrefix("KVM_CREATE_VCPU failed: File exists — "), "\(error)")
        }
    }
}
