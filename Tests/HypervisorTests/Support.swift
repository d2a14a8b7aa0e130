import Foundation
import Hypervisor
import TestSupport
import XCTest

/// Opens /dev/kvm, or skips the test where it is not usable — except under CI, where `Require.kvm` fails
/// the test: a skipped KVM test would hide that nothing was tested.
func openKVM(file: StaticString = #filePath, line: UInt = #line) throws -> KVM {
    try Require.kvm(file: file, line: line)
    return try KVM()
}

/// A small real-mode test VM: `size` bytes of anonymous guest RAM at guest-physical 0 (slot 0) holding
/// `code` at 0, one vCPU with CS=DS=ES=SS=0 and IP=0.
final class RealModeGuest {
    static let pageSize = 4096
    let kvm: KVM
    let vm: VirtualMachine
    let vcpu: VirtualCPU
    let memory: UnsafeMutableRawPointer
    let size: Int

    init(code: [UInt8], size: Int = 0x10000, logDirty: Bool = false, irqchip: Bool = false,
         beforeMemory: (VirtualMachine) throws -> Void = { _ in }) throws {
        kvm = try openKVM()
        vm = try kvm.createVM()
        if irqchip { try vm.createIRQChip() }
        try beforeMemory(vm)
        guard let mapping = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              mapping != MAP_FAILED else { throw KVMError.invalidArgument("test mmap failed") }
        memory = mapping
        self.size = size
        memory.copyMemory(from: code, byteCount: code.count)
        try vm.setUserMemoryRegion(slot: 0, guestAddress: 0, size: UInt64(size), host: memory, logDirty: logDirty)
        vcpu = try vm.createVCPU(id: 0)

        var sregs = try vcpu.getSregs()
        for keyPath in [\kvm_sregs.cs, \.ds, \.es, \.ss, \.fs, \.gs] {
            sregs[keyPath: keyPath].base = 0
            sregs[keyPath: keyPath].selector = 0
        }
        try vcpu.setSregs(sregs)
        var regs = kvm_regs()
        regs.rip = 0
        regs.rflags = 2
        try vcpu.setRegs(regs)
    }

    deinit { munmap(memory, size) }

    subscript(address: Int) -> UInt8 {
        get { memory.load(fromByteOffset: address, as: UInt8.self) }
        set { memory.storeBytes(of: newValue, toByteOffset: address, as: UInt8.self) }
    }

    /// Runs until an exit the test must see (`.retry` never happens on a BSP; kept out of assertions).
    func run() throws -> VCPUExit {
        while true {
            let exit = try vcpu.run()
            if case .retry = exit { continue }
            return exit
        }
    }
}

func bytes<T>(of value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
