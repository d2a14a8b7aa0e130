import Foundation
import Hypervisor

/// Everything KVM holds for one x86-64 vCPU, in Cloud Hypervisor's get order (MP state first: reading it
/// can update the LAPIC). Kernel structs are kept as their raw ABI bytes.
struct VcpuState: Codable, Equatable {
    static let version: UInt32 = 1

    struct MSR: Codable, Equatable {
        var index: UInt32
        var value: UInt64
    }

    var cpuid: [CPUIDEntry]
    var mpState: UInt32
    var regs: Data
    var sregs: Data
    var xsave: Data
    var xcrs: Data
    var lapic: Data
    var fpu: Data
    var debugRegs: Data
    var msrs: [MSR]
    /// MSRs KVM listed but could not read; recorded so a restore can tell what was missing.
    var unreadableMSRs: [UInt32]
    var events: Data
    var tscKHz: UInt32
}

/// MSRs saved besides KVM's index list: the MTRRs (variable, fixed, default type), as CH does.
enum MSRList {
    static let mtrrs: [UInt32] = Array(0x200...0x20F) + [0x250, 0x258, 0x259] + Array(0x268...0x26F) + [0x2FF]

    static func toSave(kvmList: [UInt32]) -> [UInt32] {
        var seen = Set<UInt32>()
        return (kvmList + mtrrs).filter { seen.insert($0).inserted }
    }
}

/// A vCPU as a state component. Only used while the vCPU's thread is parked (vCPU ioctls wait for KVM_RUN).
struct VcpuComponent: StateComponent {
    let vcpu: VirtualCPU
    let msrIndices: [UInt32]
    static let sectionType = "kvm-vcpu-x86_64"
    var id: String { "vcpu-\(vcpu.id)" }
    var type: String { Self.sectionType }
    var version: UInt32 { VcpuState.version }

    func capture() throws -> VcpuState {
        let mp = try vcpu.getMPState()
        let msrs = try vcpu.getMSRs(msrIndices)
        let read = Set(msrs.map(\.index))
        return VcpuState(
            cpuid: try vcpu.getCPUID(),
            mpState: mp,
            regs: StateCoding.raw(try vcpu.getRegs()),
            sregs: StateCoding.raw(try vcpu.getSregs()),
            xsave: Data(try vcpu.getXSAVE()),
            xcrs: StateCoding.raw(try vcpu.getXCRS()),
            lapic: StateCoding.raw(try vcpu.getLAPIC()),
            fpu: StateCoding.raw(try vcpu.getFPU()),
            debugRegs: StateCoding.raw(try vcpu.getDebugRegs()),
            msrs: msrs.map { VcpuState.MSR(index: $0.index, value: $0.value) },
            unreadableMSRs: msrIndices.filter { !read.contains($0) },
            events: StateCoding.raw(try vcpu.getVCPUEvents()),
            tscKHz: (try? vcpu.getTSCKHz()) ?? 0)
    }

    func save() throws -> Data { try StateCoding.encode(capture()) }

    /// A state of this vCPU's shape with nothing read from KVM (whose vCPU ioctls wait while it runs): its
    /// first encoding pays the encoder's first-use costs for vCPU states (see `Vm.warmUpStateCapture`).
    var standIn: VcpuState {
        VcpuState(cpuid: Array(repeating: CPUIDEntry(function: 0), count: 64), mpState: 0,
                  regs: Data(count: MemoryLayout<kvm_regs>.size), sregs: Data(count: MemoryLayout<kvm_sregs>.size),
                  xsave: Data(count: 4096), xcrs: Data(count: MemoryLayout<kvm_xcrs>.size),
                  lapic: Data(count: MemoryLayout<kvm_lapic_state>.size), fpu: Data(count: MemoryLayout<kvm_fpu>.size),
                  debugRegs: Data(count: MemoryLayout<kvm_debugregs>.size),
                  msrs: msrIndices.map { VcpuState.MSR(index: $0, value: 0) }, unreadableMSRs: [],
                  events: Data(count: MemoryLayout<kvm_vcpu_events>.size), tscKHz: 0)
    }

    func restore(_ data: Data, version: UInt32) throws {
        guard version == VcpuState.version else {
            throw StateError(component: id, reason: "vCPU state version \(version) is not supported (this build reads \(VcpuState.version))")
        }
        let s = try StateCoding.decode(VcpuState.self, from: data, component: id)
        try apply(s)
    }

    /// Cloud Hypervisor's set order: CPUID, MP state, REGS, SREGS, XSAVE, XCRS, LAPIC, FPU, TSC kHz, MSRs,
    /// vCPU events (last: they may carry a pending exception that the registers above must already frame).
    func apply(_ s: VcpuState) throws {
        let c = id
        do {
            try vcpu.setCPUID(s.cpuid)
            try vcpu.setMPState(s.mpState)
            try vcpu.setRegs(try StateCoding.value(s.regs, as: kvm_regs.self, component: c, field: "regs"))
            try vcpu.setSregs(try StateCoding.value(s.sregs, as: kvm_sregs.self, component: c, field: "sregs"))
            try vcpu.setXSAVE([UInt8](s.xsave))
            try vcpu.setXCRS(try StateCoding.value(s.xcrs, as: kvm_xcrs.self, component: c, field: "xcrs"))
            try vcpu.setLAPIC(try StateCoding.value(s.lapic, as: kvm_lapic_state.self, component: c, field: "lapic"))
            try vcpu.setFPU(try StateCoding.value(s.fpu, as: kvm_fpu.self, component: c, field: "fpu"))
            try vcpu.setDebugRegs(try StateCoding.value(s.debugRegs, as: kvm_debugregs.self, component: c, field: "debugregs"))
            if s.tscKHz != 0 { try? vcpu.setTSCKHz(s.tscKHz) }
            let set = try vcpu.setMSRs(s.msrs.map { (index: $0.index, value: $0.value) })
            if set < s.msrs.count {
                throw StateError(component: c, reason: "KVM accepted only \(set) of \(s.msrs.count) saved MSRs (a different host CPU?)")
            }
            try vcpu.setVCPUEvents(try StateCoding.value(s.events, as: kvm_vcpu_events.self, component: c, field: "events"))
        } catch let e as StateError {
            throw e
        } catch {
            throw StateError(component: c, reason: "\(error)")
        }
    }
}
