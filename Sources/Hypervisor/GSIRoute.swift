/// One entry of the VM's GSI routing table (KVM_SET_GSI_ROUTING).
public enum GSIRoute: Sendable, Equatable, Hashable {
    /// GSI → pin of an in-kernel chip (KVM_IRQCHIP_PIC_MASTER 0, PIC_SLAVE 1, IOAPIC 2).
    case irqchip(gsi: UInt32, chip: UInt32, pin: UInt32)
    /// GSI → MSI message (what a device's MSI/MSI-X table entry holds).
    case msi(gsi: UInt32, address: UInt64, data: UInt32)

    public var gsi: UInt32 {
        switch self {
        case .irqchip(let gsi, _, _), .msi(let gsi, _, _): return gsi
        }
    }

    /// The table KVM installs with KVM_CREATE_IRQCHIP: GSIs 0–15 to both PICs (pin gsi%8) and the IOAPIC
    /// (pin gsi), GSIs 16–23 to the IOAPIC only.
    public static var defaultIRQChipRoutes: [GSIRoute] {
        var routes: [GSIRoute] = []
        for gsi: UInt32 in 0..<24 {
            if gsi < 16 { routes.append(.irqchip(gsi: gsi, chip: gsi < 8 ? 0 : 1, pin: gsi % 8)) }
            routes.append(.irqchip(gsi: gsi, chip: 2, pin: gsi))
        }
        return routes
    }

    var raw: kvm_irq_routing_entry {
        var entry = kvm_irq_routing_entry()
        switch self {
        case let .irqchip(gsi, chip, pin):
            entry.gsi = gsi
            entry.type = UInt32(KVM_IRQ_ROUTING_IRQCHIP)
            entry.u.irqchip.irqchip = chip
            entry.u.irqchip.pin = pin
        case let .msi(gsi, address, data):
            entry.gsi = gsi
            entry.type = UInt32(KVM_IRQ_ROUTING_MSI)
            entry.u.msi.address_lo = UInt32(truncatingIfNeeded: address)
            entry.u.msi.address_hi = UInt32(truncatingIfNeeded: address >> 32)
            entry.u.msi.data = data
        }
        return entry
    }
}
