import CKVM

/// virtio-net feature bits (virtio 1.2 §5.1.3) and how the guest's receive offloads map to the TAP's.
enum NetFeature {
    static let csum: UInt64 = 1 << 0
    static let guestCsum: UInt64 = 1 << 1
    static let ctrlGuestOffloads: UInt64 = 1 << 2
    static let mtu: UInt64 = 1 << 3
    static let mac: UInt64 = 1 << 5
    static let guestTso4: UInt64 = 1 << 7
    static let guestTso6: UInt64 = 1 << 8
    static let guestEcn: UInt64 = 1 << 9
    static let guestUfo: UInt64 = 1 << 10
    static let hostTso4: UInt64 = 1 << 11
    static let hostTso6: UInt64 = 1 << 12
    static let hostEcn: UInt64 = 1 << 13
    static let hostUfo: UInt64 = 1 << 14
    static let status: UInt64 = 1 << 16
    static let ctrlVq: UInt64 = 1 << 17
    static let mq: UInt64 = 1 << 22

    /// The offloads a driver may switch with VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET (same bit numbers).
    static let guestOffloads = guestCsum | guestTso4 | guestTso6 | guestEcn | guestUfo

    /// What the TAP may hand us for the guest: only what the guest can take (TUNSETOFFLOAD). Without
    /// it the kernel checksums and segments before the frame reaches the TAP.
    static func tapOffload(forGuest offloads: UInt64) -> UInt32 {
        var flags: UInt32 = 0
        if offloads & guestCsum != 0 { flags |= CKVM_TUN_F_CSUM }
        if offloads & guestTso4 != 0 { flags |= CKVM_TUN_F_TSO4 }
        if offloads & guestTso6 != 0 { flags |= CKVM_TUN_F_TSO6 }
        if offloads & guestEcn != 0 { flags |= CKVM_TUN_F_TSO_ECN }
        if offloads & guestUfo != 0 { flags |= CKVM_TUN_F_UFO }
        return flags
    }

    /// The offload bits offered for the options (Cloud Hypervisor's rules: TSO and UFO need checksum offload).
    static func offloads(csum: Bool, tso: Bool, ufo: Bool) -> UInt64 {
        guard csum else { return 0 }
        var f = Self.csum | guestCsum | ctrlGuestOffloads
        if tso { f |= hostTso4 | hostTso6 | hostEcn | guestTso4 | guestTso6 | guestEcn }
        if ufo { f |= hostUfo | guestUfo }
        return f
    }
}
