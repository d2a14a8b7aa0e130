import Foundation

/// An Ethernet MAC address. JSON carries it as `"12:34:56:78:9a:bc"` (lowercase on output, as CH's MacAddr);
/// anything that is not six two-digit hex groups is rejected when decoding or parsing.
public struct MacAddress: Codable, Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        guard groups.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for g in groups {
            guard g.count == 2, g.allSatisfy(\.isHexDigit), let b = UInt8(g, radix: 16) else { return nil }
            bytes.append(b)
        }
        self.bytes = bytes
    }

    /// A random unicast, locally administered address (what CH gives a net device without `mac=`).
    public static func localRandom() -> MacAddress {
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = bytes[0] & 0xFE | 0x02
        return MacAddress(bytes: bytes)!
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    public var description: String {
        bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: ":")
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let mac = MacAddress(text) else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "The provided MAC address is invalid: parsing of \(text) into a MAC address failed")
        }
        self = mac
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// IP addresses are kept as text in CH's canonical form (what Rust's `IpAddr` prints), validated on the way in.
enum IPAddress {
    /// The canonical spelling of an IPv4 or IPv6 address, or nil if `text` is neither.
    static func canonical(_ text: String) -> String? {
        for family in [AF_INET, AF_INET6] {
            var raw = [UInt8](repeating: 0, count: 16)
            guard inet_pton(family, text, &raw) == 1 else { continue }
            var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(family, raw, &out, socklen_t(out.count)) != nil else { return nil }
            return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return nil
    }

    /// Decodes an optional address field, rejecting malformed ones as serde's `IpAddr` does.
    static func decode<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> String? {
        guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let ip = canonical(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "invalid IP address syntax: \(text)")
        }
        return ip
    }
}

extension String {
    fileprivate func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
