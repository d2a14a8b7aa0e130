/// Ethernet addresses as virtio-net and the TAP take them: six bytes.
public enum MACAddress {
    /// Parses "aa:bb:cc:dd:ee:ff". Rejects anything else, and addresses a NIC cannot have: multicast
    /// (including broadcast) and all-zero.
    public static func parse(_ text: String) throws(NetError) -> [UInt8] {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        guard groups.count == 6 else { throw .invalidMAC(text, reason: "\(groups.count) groups instead of 6") }
        var bytes: [UInt8] = []
        for g in groups {
            guard g.count == 2, g.allSatisfy(\.isHexDigit), let b = UInt8(g, radix: 16) else {
                throw .invalidMAC(text, reason: "\"\(g)\" is not two hex digits")
            }
            bytes.append(b)
        }
        try validate(bytes, text: text)
        return bytes
    }

    /// Checks six bytes given directly (the VMM's own parsed form).
    public static func validate(_ bytes: [UInt8], text: String? = nil) throws(NetError) {
        let shown = text ?? format(bytes)
        guard bytes.count == 6 else { throw .invalidMAC(shown, reason: "\(bytes.count) bytes instead of 6") }
        guard bytes[0] & 1 == 0 else { throw .invalidMAC(shown, reason: "it is a multicast address (lowest bit of the first byte set)") }
        guard bytes.contains(where: { $0 != 0 }) else { throw .invalidMAC(shown, reason: "it is all zeros") }
    }

    /// A random locally administered unicast address, as Cloud Hypervisor picks when none is given.
    public static func random() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes[0] = (bytes[0] & 0xfc) | 0x02
        return bytes
    }

    public static func format(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
