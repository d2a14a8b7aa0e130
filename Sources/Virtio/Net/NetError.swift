import Glibc

/// Why a virtio-net device could not be created: TAP setup on the host or a bad option. Each message
/// says what to change.
public enum NetError: Error, CustomStringConvertible, Equatable {
    case tunMissing
    case tunAccess(errno: Int32)
    /// TUNSETIFF or an interface setting was refused (EPERM).
    case needsNetAdmin(tap: String?)
    case tapBusy(name: String)
    /// The named interface exists but is not a TAP with the flags asked for (EINVAL).
    case tapMismatch(name: String, multiQueue: Bool)
    case tapFailed(name: String?, operation: String, errno: Int32)
    case interfaceConfig(name: String, setting: String, errno: Int32)
    case invalidTapName(String)
    case invalidMAC(String, reason: String)
    case invalidIPv4(option: String, value: String)
    case invalidQueueCount(Int)
    case invalidQueueSize(UInt16)

    public var description: String {
        switch self {
        case .tunMissing:
            return "/dev/net/tun does not exist: load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)"
        case let .tunAccess(err):
            return "cannot open /dev/net/tun: \(String(cString: strerror(err))) — the VMM needs read and write access to it"
        case let .needsNetAdmin(tap):
            let create = tap.map { "ip tuntap add \($0) mode tap user $USER vnet_hdr (add multi_queue for num_queues > 2)" }
                ?? "ip tuntap add NAME mode tap user $USER vnet_hdr, then pass tap=NAME"
            return "setting up a TAP interface needs CAP_NET_ADMIN: run the VMM as root or with CAP_NET_ADMIN, or create the interface beforehand (\(create)) and leave ip, mask, host_mac and mtu unset"
        case let .tapBusy(name):
            return "TAP interface \(name) is in use by another process: stop it, or choose another tap= name"
        case let .tapMismatch(name, multiQueue):
            return "interface \(name) exists but is not a TAP with vnet_hdr\(multiQueue ? " and multi_queue" : " and without multi_queue"): delete it (ip link del \(name)) or choose another tap= name\(multiQueue ? ", or use num_queues=2" : "")"
        case let .tapFailed(name, operation, err):
            return "TAP interface \(name ?? "vmtap%d"): \(operation) failed: \(String(cString: strerror(err)))"
        case let .interfaceConfig(name, setting, err):
            let hint = err == EPERM ? " (needs CAP_NET_ADMIN: run the VMM as root)" : ""
            return "cannot set the \(setting) of TAP interface \(name): \(String(cString: strerror(err)))\(hint)"
        case let .invalidTapName(name):
            return "TAP name \"\(name)\" is invalid: 1 to 15 characters, no '/', ':' or whitespace"
        case let .invalidMAC(text, reason):
            return "MAC address \"\(text)\" is invalid: \(reason) (expected six hex pairs such as 52:54:00:12:34:56)"
        case let .invalidIPv4(option, value):
            return "\(option) \"\(value)\" is not an IPv4 address such as 192.168.249.1"
        case let .invalidQueueCount(n):
            return "num_queues=\(n) is invalid for virtio-net: an even number of at least 2 (one RX and one TX queue per pair), at most 32"
        case let .invalidQueueSize(n):
            return "queue_size=\(n) is invalid: a power of two from 2 to 32768"
        }
    }
}
