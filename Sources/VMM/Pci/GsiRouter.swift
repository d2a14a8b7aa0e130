import Foundation
import Hypervisor
import Pci
import Synchronization
import Virtio

/// The VM's GSI routing table: the legacy irqchip pins plus one MSI route per device vector.
///
/// KVM_SET_GSI_ROUTING replaces the whole table, so every change commits all routes; vectors change
/// only when a driver programs its MSI-X table (boot, module load), not per interrupt.
final class GsiRouter: Sendable {
    /// GSIs 0–23 are the PIC/IOAPIC pins.
    static let firstMsiGSI: UInt32 = 24
    private let vm: VirtualMachine
    private let state = Mutex<(next: UInt32, routes: [UInt32: GSIRoute])>((GsiRouter.firstMsiGSI, [:]))

    init(vm: VirtualMachine) { self.vm = vm }

    func allocate() -> UInt32 {
        state.withLock { s in
            defer { s.next += 1 }
            return s.next
        }
    }

    /// Points `gsi` at `message` and installs the table.
    func route(_ gsi: UInt32, to message: MsiMessage) throws(KVMError) {
        try state.withLock { s throws(KVMError) in
            s.routes[gsi] = .msi(gsi: gsi, address: message.address, data: message.data)
            try vm.setGSIRouting(GSIRoute.defaultIRQChipRoutes + s.routes.values.sorted { $0.gsi < $1.gsi })
        }
    }
}

/// One device's MSI-X vectors as KVM irqfds: triggering a vector is one eventfd write, from any
/// thread, and KVM injects the message its GSI route holds.
final class KvmMsiVectors: MsiVectors, Sendable {
    private let router: GsiRouter
    private let vm: VirtualMachine
    private let gsis: [UInt32]
    private let events: [EventFD]
    private let onError: @Sendable (String) -> Void

    init(vm: VirtualMachine, router: GsiRouter, count: Int, onError: @escaping @Sendable (String) -> Void) throws {
        self.vm = vm
        self.router = router
        self.onError = onError
        gsis = (0..<count).map { _ in router.allocate() }
        events = try (0..<count).map { _ in try EventFD() }
        for (gsi, event) in zip(gsis, events) { try vm.registerIrqfd(eventFD: event.fd, gsi: gsi) }
    }

    deinit {
        for (gsi, event) in zip(gsis, events) { try? vm.unregisterIrqfd(eventFD: event.fd, gsi: gsi) }
    }

    func update(vector: Int, message: MsiMessage) {
        do { try router.route(gsis[vector], to: message) } catch { onError("MSI-X vector \(vector): \(error)") }
    }

    func trigger(vector: Int) {
        do { try events[vector].write() } catch { onError("MSI-X vector \(vector): \(error)") }
    }
}

/// Queue notifications as KVM ioeventfds on guest MMIO addresses.
///
/// `SWIFTCH_NO_IOEVENTFD=1` in the environment leaves them unregistered, so every notification exits
/// to the VMM: only for measuring what ioeventfd saves (scripts/bench-blk --no-ioeventfd-run).
struct KvmIoEvents: IoEventRegistrar, @unchecked Sendable {
    let vm: VirtualMachine
    static let disabled = ProcessInfo.processInfo.environment["SWIFTCH_NO_IOEVENTFD"] == "1"

    func register(_ event: EventFD, address: UInt64, length: UInt32) throws {
        guard !Self.disabled else { return }
        try vm.registerIoeventfd(eventFD: event.fd, address: address, length: length, isPIO: false)
    }

    func unregister(_ event: EventFD, address: UInt64, length: UInt32) {
        guard !Self.disabled else { return }
        try? vm.unregisterIoeventfd(eventFD: event.fd, address: address, length: length, isPIO: false)
    }
}
