/// Where the virtio structures sit in BAR0 of a virtio-pci device (the same offsets as Cloud
/// Hypervisor, so a guest sees the same layout), and the capability types that point at them.
enum VirtioPciLayout {
    static let barSize: UInt64 = 0x8_0000
    static let common: Range<UInt64> = 0x0000..<0x1000
    static let isr: Range<UInt64> = 0x1000..<0x2000
    static let device: Range<UInt64> = 0x2000..<0x3000
    static let notify: Range<UInt64> = 0x3000..<0x4000
    static let msixTable: UInt64 = 0x8000
    static let msixPBA: UInt64 = 0x4_8000
    /// Each queue's notify address is notify.lowerBound + queue_notify_off × this.
    static let notifyMultiplier: UInt32 = 4

    /// virtio_pci_cap cfg_type values (virtio 1.2 §4.1.4).
    enum CapabilityType: UInt8 { case common = 1, notify = 2, isr = 3, device = 4 }

    /// The body of a vendor-specific (0x09) virtio_pci_cap after id/next: cap_len, cfg_type, bar,
    /// id, padding, offset, length (+ notify_off_multiplier for the notify capability).
    static func capability(_ type: CapabilityType, _ range: Range<UInt64>) -> [UInt8] {
        let extra: [UInt8] = type == .notify ? le(notifyMultiplier) : []
        return [UInt8(16 + extra.count), type.rawValue, 0, 0, 0, 0]
            + le(UInt32(range.lowerBound)) + le(UInt32(range.count)) + extra
    }

    private static func le(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
}

/// Device status bits (virtio 1.2 §2.1).
enum VirtioStatus {
    static let acknowledge: UInt8 = 1
    static let driver: UInt8 = 2
    static let driverOK: UInt8 = 4
    static let featuresOK: UInt8 = 8
    static let needsReset: UInt8 = 0x40
    static let failed: UInt8 = 0x80
}
