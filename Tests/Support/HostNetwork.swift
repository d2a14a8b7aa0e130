import Foundation

/// A TAP interface with an IPv4 address on the host, for a guest's virtio-net (created with `ip`, needs root
/// and /dev/net/tun). `remove()` deletes it; tests call it in a `defer`.
public final class TapDevice {
    public let name: String
    public let hostAddress: String

    /// Why a TAP cannot be created here (nil when it can).
    public static var unavailableReason: String? {
        if getuid() != 0 { return "creating a TAP interface needs root" }
        if Paths.which("ip") == nil { return "the ip tool (iproute2) is not installed" }
        if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "/dev/net/tun is missing" }
        return nil
    }

    /// A name that is unique per test process and call (interface names have at most 15 characters).
    public static func uniqueName(prefix: String = "cgq") -> String {
        "\(prefix)\(getpid() % 100_000)\(UInt8.random(in: 0 ... 99))"
    }

    /// `ip tuntap add dev NAME mode tap`, `ip addr add HOST/PREFIX dev NAME`, `ip link set NAME up`.
    public init(name: String = TapDevice.uniqueName(), hostAddress: String, prefixLength: Int = 24) throws {
        self.name = name
        self.hostAddress = hostAddress
        try Self.ip(["tuntap", "add", "dev", name, "mode", "tap"])
        do {
            try Self.ip(["addr", "add", "\(hostAddress)/\(prefixLength)", "dev", name])
            try Self.ip(["link", "set", name, "up"])
        } catch {
            remove()
            throw error
        }
    }

    /// Deletes the interface (idempotent).
    public func remove() {
        _ = try? Self.ip(["link", "del", name])
    }

    /// Forgets the neighbours learnt on this interface, so the next packet to the guest starts with an ARP
    /// request the guest has to answer.
    public func flushNeighbours() throws {
        try Self.ip(["neigh", "flush", "dev", name])
    }

    public struct CommandError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `ip ARGS`; throws with its output when it fails.
    @discardableResult
    public static func ip(_ arguments: [String]) throws -> String {
        let (status, text) = try HostCommand.run(Paths.which("ip") ?? "/usr/sbin/ip", arguments)
        guard status == 0 else {
            throw CommandError(description: "ip \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }
}

/// ICMP echo ("ping") from the host over a raw socket (root): no dependency on an installed `ping`.
public enum ICMPEcho {
    /// Sends one echo request to `address` and waits for the matching reply; returns the round-trip time in
    /// seconds, nil on timeout.
    public static func ping(_ address: String, sequence: UInt16, timeout: TimeInterval = 1,
                            payload: [UInt8] = Array("checkguest-host-ping-0123456789".utf8)) throws -> TimeInterval? {
        let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMP))
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPERM) }
        defer { close(fd) }
        var dst = sockaddr_in()
        dst.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, address, &dst.sin_addr) == 1 else { throw POSIXError(.EINVAL) }
        let ident = UInt16(truncatingIfNeeded: getpid())
        var packet: [UInt8] = [8, 0, 0, 0, UInt8(ident >> 8), UInt8(ident & 0xff), UInt8(sequence >> 8),
                               UInt8(sequence & 0xff)] + payload
        let sum = checksum(packet)
        packet[2] = UInt8(sum >> 8)
        packet[3] = UInt8(sum & 0xff)
        let start = Date()
        let sent = packet.withUnsafeBytes { buf in
            withUnsafePointer(to: &dst) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == packet.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var buf = [UInt8](repeating: 0, count: 2048)
        while true {
            let left = timeout - Date().timeIntervalSince(start)
            if left <= 0 { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(max(1, left * 1000)))
            if r < 0 && errno != EINTR { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if r <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n >= 28 else { continue }
            let ihl = Int(buf[0] & 0x0f) * 4
            guard n >= ihl + 8 else { continue }
            let icmp = buf[ihl ..< n]
            let type = icmp[ihl], id = UInt16(icmp[ihl + 4]) << 8 | UInt16(icmp[ihl + 5])
            let seq = UInt16(icmp[ihl + 6]) << 8 | UInt16(icmp[ihl + 7])
            if type == 0 && id == ident && seq == sequence && Array(icmp.dropFirst(8)) == payload {
                return Date().timeIntervalSince(start)
            }
        }
    }

    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}
