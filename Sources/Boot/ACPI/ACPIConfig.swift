import Memory

/// A guest-physical address range.
public struct AddressWindow: Sendable, Equatable {
    public var base: UInt64
    public var size: UInt64

    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.size = size
    }

    /// The last address inside the window.
    public var last: UInt64 { base + size - 1 }
}

/// A MADT Interrupt Source Override: ISA IRQ `source` arrives on `gsi`. `flags` 0 = "conforms to the
/// bus" (ISA: edge, active high).
public struct InterruptOverride: Sendable, Equatable {
    public var source: UInt8
    public var gsi: UInt32
    public var flags: UInt16

    public init(source: UInt8, gsi: UInt32, flags: UInt16 = 0) {
        self.source = source
        self.gsi = gsi
        self.flags = flags
    }
}

/// The fixed platform the ACPI tables describe; the VMM's devices must sit exactly here.
public enum ACPIPlatform {
    /// Sleep control (write (SLP_TYP << 2) | SLP_EN) and reset register share this port, as in CH:
    /// a write of `resetValue` resets, a write of `s5Command` powers off.
    public static let sleepControlPort: UInt16 = 0x600
    /// Sleep status (WAK_STS is bit 7).
    public static let sleepStatusPort: UInt16 = 0x601
    public static let resetPort: UInt16 = 0x600
    public static let resetValue: UInt8 = 1
    /// The 32-bit ACPI PM timer (3.579545 MHz).
    public static let pmTimerPort: UInt16 = 0x608
    /// `_S5_` = {5, 0}, so the power-off write is (5 << 2) | SLP_EN (0x20).
    public static let s5SleepType: UInt8 = 5
    public static let s5Command: UInt8 = 0x34
    /// The Notify value the GED's _EVT sends to the power button: "button pressed".
    public static let powerButtonNotify: UInt64 = 0x80
    /// KVM's in-kernel IOAPIC has 24 pins.
    public static let ioapicPins: UInt32 = 24
    /// xAPIC ids are 8 bits and 0xFF is the broadcast id.
    public static let maxCPUs = 255
}

/// What the ACPI tables describe beyond the fixed platform.
public struct ACPIConfig: Sendable, Equatable {
    /// COM1's ISA IRQ, identity-mapped to the same IOAPIC pin.
    public static let defaultSerialIRQ: UInt8 = 4
    /// The GSI of the Generic Event Device, through which the power button is pressed (edge-triggered,
    /// active high). Pin 5 is the first that no legacy device of ours claims (CH's allocator starts at 5 too).
    public static let defaultGEDGSI: UInt32 = 5
    /// How much 64-bit MMIO space is offered to PCI BARs by default.
    public static let default64BitWindowSize: UInt64 = 64 << 30

    /// vCPUs running at boot (MADT entries marked enabled).
    public var bootCPUs: Int
    /// vCPUs that may ever exist; those beyond `bootCPUs` are marked online-capable (hotpluggable).
    public var maxCPUs: Int
    public var serialPort: UInt16 = 0x3F8
    public var serialIRQ: UInt8 = ACPIConfig.defaultSerialIRQ
    public var gedGSI: UInt32 = ACPIConfig.defaultGEDGSI
    public var pciSegment: UInt16 = 0
    /// The ECAM window of `pciSegment` (buses 0–255, 1 MiB each).
    public var pciMMConfig = AddressWindow(base: GuestLayout.pciMMConfigStart, size: GuestLayout.pciMMConfigSize)
    /// Where 32-bit BARs live: from the hole's start up to the ECAM window.
    public var pci32BitWindow = AddressWindow(
        base: GuestLayout.pci32BitMMIOStart, size: GuestLayout.pciMMConfigStart - GuestLayout.pci32BitMMIOStart)
    /// Where 64-bit BARs live; nil: `default64BitWindow(for:)`, just above all RAM.
    public var pci64BitWindow: AddressWindow?
    /// PCI INTx routing: entry n is the GSI of slot n's INTA–INTD (level, active low). Empty = no _PRT:
    /// devices must use MSI/MSI-X, which all virtio-pci devices do.
    public var pciINTxGSIs: [UInt32] = []
    /// MADT interrupt source overrides. The default restates the serial IRQ as identity-mapped, as CH does:
    /// with HW-reduced ACPI Linux sets up no legacy IRQs, and the override tells it where ISA IRQ 4 is.
    /// There is deliberately no IRQ0 → GSI2 override: see docs/boot.md.
    public var interruptOverrides: [InterruptOverride]
    /// Table header identification.
    public var oemID = "SWIFTC"
    public var oemTableID = "CHSWIFT "
    /// FADT hypervisor vendor identity (8 bytes).
    public var hypervisorVendor = "SWIFTCHV"

    public init(bootCPUs: Int, maxCPUs: Int? = nil) {
        self.bootCPUs = bootCPUs
        self.maxCPUs = maxCPUs ?? bootCPUs
        self.interruptOverrides = [InterruptOverride(source: ACPIConfig.defaultSerialIRQ,
                                                     gsi: UInt32(ACPIConfig.defaultSerialIRQ))]
    }

    /// 64 GiB from the first 1 GiB boundary above all RAM (and at least at 4 GiB).
    public static func default64BitWindow(for memory: GuestMemory) -> AddressWindow {
        let ramEnd = memory.regions.map(\.guestEnd).max() ?? 0
        return AddressWindow(base: max(GuestLayout.ram64BitStart, ramEnd).alignedUp(to: 1 << 30),
                             size: default64BitWindowSize)
    }

    /// The 64-bit window the tables will describe for this guest.
    public func effective64BitWindow(for memory: GuestMemory) -> AddressWindow {
        pci64BitWindow ?? Self.default64BitWindow(for: memory)
    }

    func validate(memory: GuestMemory) throws {
        guard bootCPUs >= 1, bootCPUs <= maxCPUs else { throw ACPIError.badCPUCount(boot: bootCPUs, max: maxCPUs) }
        guard maxCPUs <= ACPIPlatform.maxCPUs else {
            throw ACPIError.tooManyCPUs(max: maxCPUs, limit: ACPIPlatform.maxCPUs)
        }
        let w32 = pci32BitWindow, w64 = effective64BitWindow(for: memory), ecam = pciMMConfig
        guard w32.size > 0, w32.base >= GuestLayout.mmioHoleStart, w32.last < GuestLayout.mmioHoleEnd else {
            throw ACPIError.badWindow(what: "32-bit PCI window", detail: "it must lie inside the 32-bit MMIO hole")
        }
        guard ecam.size > 0, ecam.size % (1 << 20) == 0, ecam.size <= 256 << 20, ecam.last < GuestLayout.mmioHoleEnd,
              ecam.base >= GuestLayout.mmioHoleStart else {
            throw ACPIError.badWindow(what: "PCI ECAM window",
                                      detail: "it must be 1–256 MiB in 1 MiB steps inside the 32-bit MMIO hole")
        }
        guard w64.size > 0, w64.base >= GuestLayout.mmioHoleEnd, w64.base <= UInt64.max - w64.size + 1 else {
            throw ACPIError.badWindow(what: "64-bit PCI window", detail: "it must lie above 4 GiB")
        }
        for region in memory.regions where region.guestBase <= w64.last && w64.base < region.guestEnd {
            throw ACPIError.badWindow(
                what: "64-bit PCI window",
                detail: "\(hex(w64.base))–\(hex(w64.last)) overlaps guest RAM ending at \(hex(region.guestEnd))")
        }
        guard gedGSI < ACPIPlatform.ioapicPins, UInt32(serialIRQ) < 16,
              pciINTxGSIs.allSatisfy({ $0 < ACPIPlatform.ioapicPins }) else {
            throw ACPIError.badWindow(what: "interrupt assignment",
                                      detail: "GSIs must be below \(ACPIPlatform.ioapicPins) (the IOAPIC's pins)")
        }
    }
}
