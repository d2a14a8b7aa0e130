import Hypervisor
import XCTest

/// GET → SET → GET of every piece of state a snapshot saves, on a fresh VM with irqchip and PIT.
final class StateRoundTripTests: XCTestCase {
    private var kvm: KVM!
    private var vm: VirtualMachine!
    private var vcpu: VirtualCPU!

    override func setUpWithError() throws {
        kvm = try openKVM()
        vm = try kvm.createVM()
        try vm.setTSSAddress(0xFFFB_D000)
        try vm.setIdentityMapAddress(0xFFFB_C000)
        try vm.createIRQChip()
        try vm.createPIT2()
        vcpu = try vm.createVCPU(id: 0)
    }

    override func tearDown() {
        vcpu = nil
        vm = nil
        kvm = nil
    }

    /// Sets what was read and checks a second read returns the same bytes.
    private func roundTrip<T>(_ name: String, get: () throws -> T, set: (T) throws -> Void,
                              compare: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try get()
        try set(before)
        if compare {
            XCTAssertEqual(bytes(of: try get()), bytes(of: before), "\(name) changed across GET→SET→GET", file: file, line: line)
        }
    }

    func testVCPURegisterState() throws {
        try roundTrip("regs", get: vcpu.getRegs, set: vcpu.setRegs)
        try roundTrip("sregs", get: vcpu.getSregs, set: vcpu.setSregs)
        try roundTrip("fpu", get: vcpu.getFPU, set: vcpu.setFPU)
        try roundTrip("lapic", get: vcpu.getLAPIC, set: vcpu.setLAPIC)
        try roundTrip("xcrs", get: vcpu.getXCRS, set: vcpu.setXCRS)
        try roundTrip("vcpuEvents", get: vcpu.getVCPUEvents, set: vcpu.setVCPUEvents)
        try roundTrip("debugRegs", get: vcpu.getDebugRegs, set: vcpu.setDebugRegs)

        let mp = try vcpu.getMPState()
        try vcpu.setMPState(mp)
        XCTAssertEqual(try vcpu.getMPState(), mp)

        let xsave = try vcpu.getXSAVE()
        XCTAssertEqual(xsave.count, vcpu.xsaveSize)
        try vcpu.setXSAVE(xsave)
        XCTAssertEqual(try vcpu.getXSAVE(), xsave)
    }

    func testMSRsTSCAndCPUID() throws {
        let indices = try kvm.msrIndexList()
        let msrs = try vcpu.getMSRs(indices)
        XCTAssertFalse(msrs.isEmpty)
        XCTAssertEqual(try vcpu.setMSRs(msrs), msrs.count, "every MSR that could be read can be written back")
        let unreadable = try vcpu.getMSRs([0x10, 0xDEAD_BEEF, 0x1B])
        XCTAssertEqual(unreadable.map(\.index), [0x10, 0x1B], "an unknown MSR is skipped, not fatal")

        let khz = try vcpu.getTSCKHz()
        XCTAssertGreaterThan(khz, 0)
        try vcpu.setTSCKHz(khz)
        XCTAssertEqual(try vcpu.getTSCKHz(), khz)

        // KVM-PVM rewrites leaves 1 and 7 on SET (host feature bits come through), so compare what a
        // snapshot would see: GET after a SET of a previous GET.
        var cpuid = try kvm.supportedCPUID()
        let marker = cpuid.firstIndex { $0.function == 0x4000_0000 }
        if let marker { cpuid[marker].ebx = 0x1234_5678 }
        try vcpu.setCPUID(cpuid)
        let effective = try vcpu.getCPUID()
        XCTAssertEqual(effective.count, cpuid.count)
        if marker != nil { XCTAssertEqual(effective.first { $0.function == 0x4000_0000 }?.ebx, 0x1234_5678) }
        try vcpu.setCPUID(effective)
        XCTAssertEqual(try vcpu.getCPUID(), effective)

        XCTAssertFalse(try vcpu.kvmclockCtrl(), "guest never enabled kvmclock: not applicable, no throw")
    }

    func testVMDeviceState() throws {
        try roundTrip("clock", get: vm.getClock, set: vm.setClock, compare: false)
        for chip: UInt32 in 0...2 {
            try roundTrip("irqchip \(chip)", get: { try vm.getIRQChip(chip) }, set: vm.setIRQChip)
            XCTAssertEqual(try vm.getIRQChip(chip).chip_id, chip)
        }
        try roundTrip("pit2", get: vm.getPIT2, set: vm.setPIT2, compare: false)
        let pit = try vm.getPIT2()
        XCTAssertEqual(bytes(of: pit.channels), bytes(of: try vm.getPIT2().channels))
    }
}
