import Foundation
import Hypervisor

/// VM-wide KVM state: kvmclock, the in-kernel PIC master/slave and IOAPIC, and the PIT.
struct KvmVmState: Codable, Equatable {
    static let version: UInt32 = 1

    var clock: Data
    var picMaster: Data
    var picSlave: Data
    var ioapic: Data
    var pit: Data
}

/// The KVM VM as a state component. The clock is the one captured when the vCPUs were paused, so
/// that the guest does not see the time spent paused or on disk.
struct KvmVmComponent: StateComponent {
    let vm: VirtualMachine
    let pausedClock: kvm_clock_data?
    var id: String { "kvm-vm" }
    var type: String { "kvm-vm-x86_64" }
    var version: UInt32 { KvmVmState.version }

    func save() throws -> Data {
        do {
            let clock = try pausedClock ?? vm.getClock()
            return try StateCoding.encode(KvmVmState(
                clock: StateCoding.raw(clock),
                picMaster: StateCoding.raw(try vm.getIRQChip(0)),
                picSlave: StateCoding.raw(try vm.getIRQChip(1)),
                ioapic: StateCoding.raw(try vm.getIRQChip(2)),
                pit: StateCoding.raw(try vm.getPIT2())))
        } catch {
            throw StateError(component: id, reason: "\(error)")
        }
    }

    func restore(_ data: Data, version: UInt32) throws {
        guard version == KvmVmState.version else {
            throw StateError(component: id, reason: "VM state version \(version) is not supported (this build reads \(KvmVmState.version))")
        }
        let s = try StateCoding.decode(KvmVmState.self, from: data, component: id)
        do {
            for (chip, bytes, name) in [(0, s.picMaster, "pic-master"), (1, s.picSlave, "pic-slave"), (2, s.ioapic, "ioapic")] {
                var c = try StateCoding.value(bytes, as: kvm_irqchip.self, component: id, field: name)
                c.chip_id = UInt32(chip)
                try vm.setIRQChip(c)
            }
            try vm.setPIT2(try StateCoding.value(s.pit, as: kvm_pit_state2.self, component: id, field: "pit"))
            var clock = try StateCoding.value(s.clock, as: kvm_clock_data.self, component: id, field: "clock")
            // Only the clock value is meaningful on another host/boot; KVM rejects unknown flags.
            clock.flags = 0
            try vm.setClock(clock)
        } catch let e as StateError {
            throw e
        } catch {
            throw StateError(component: id, reason: "\(error)")
        }
    }
}
