import Glibc
import Devices
import Hypervisor

/// A GSI of KVM's in-kernel IOAPIC/PIC, driven with KVM_IRQ_LINE.
struct KvmIrqLine: InterruptLine, @unchecked Sendable {
    let vm: VirtualMachine
    let gsi: UInt32

    func setLevel(_ high: Bool) {
        try? vm.setIRQLine(gsi, level: high)
    }

    func pulse() {
        try? vm.setIRQLine(gsi, level: true)
        try? vm.setIRQLine(gsi, level: false)
    }
}
