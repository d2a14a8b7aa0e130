import CKVM
import Glibc

/// A TAP interface opened for one virtio-net device: one non-blocking queue fd per RX/TX pair, each
/// frame preceded by the 12-byte virtio-net header (IFF_VNET_HDR, TUNSETVNETHDRSZ), so frames move
/// between guest buffers and the TAP without copying or translating headers.
///
/// Used by the thread that creates it, then by the device thread alone (queue attach state included).
final class Tap: @unchecked Sendable {
    let name: String
    let fds: [Int32]
    let multiQueue: Bool
    private var attached: [Bool]

    static let headerSize = 12
    /// readv/writev take at most this many buffers (UIO_MAXIOV).
    static let maxIovecs = 1024

    /// Opens (creating if needed) `name`, or a new `vmtap<N>`, with `queuePairs` queues.
    init(name requested: String?, queuePairs: Int) throws(NetError) {
        if let requested {
            guard (1..<Int(CKVM_IFNAMSIZ)).contains(requested.utf8.count),
                  !requested.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) else {
                throw .invalidTapName(requested)
            }
        }
        multiQueue = queuePairs > 1
        var flags = Int16(CKVM_IFF_TAP | CKVM_IFF_NO_PI | CKVM_IFF_VNET_HDR)
        if multiQueue { flags |= Int16(CKVM_IFF_MULTI_QUEUE) }
        var opened: [Int32] = []
        var resolved = requested ?? "vmtap%d"
        do throws(NetError) {
            for _ in 0..<queuePairs {
                let fd = try Self.openQueue(name: resolved, requested: requested, flags: flags, multiQueue: multiQueue)
                opened.append(fd.fd)
                resolved = fd.name
            }
            for fd in opened {
                guard ckvm_tun_set_vnet_hdr_size(fd, Int32(Self.headerSize)) == 0 else {
                    throw NetError.tapFailed(name: resolved, operation: "TUNSETVNETHDRSZ", errno: errno)
                }
            }
        } catch {
            opened.forEach { close($0) }
            throw error
        }
        name = resolved
        fds = opened
        attached = Array(repeating: true, count: queuePairs)
    }

    deinit { fds.forEach { close($0) } }

    private static func openQueue(name: String, requested: String?, flags: Int16, multiQueue: Bool) throws(NetError) -> (fd: Int32, name: String) {
        let fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            throw err == ENOENT ? .tunMissing : .tunAccess(errno: err)
        }
        var out = [CChar](repeating: 0, count: Int(CKVM_IFNAMSIZ))
        guard ckvm_tun_set_iff(fd, name, flags, &out) == 0 else {
            let err = errno
            close(fd)
            switch err {
            case EPERM: throw .needsNetAdmin(tap: requested)
            case EBUSY: throw .tapBusy(name: name)
            case EINVAL where requested != nil: throw .tapMismatch(name: name, multiQueue: multiQueue)
            default: throw .tapFailed(name: requested, operation: "TUNSETIFF", errno: err)
            }
        }
        return (fd, String(nulTerminated: out))
    }

    /// Host-side settings: address, MAC, MTU; then brings the interface up.
    func configure(ip: String?, mask: String?, hostMac: [UInt8]?, mtu: UInt16?) throws(NetError) {
        if let ip {
            let address = try Self.ipv4(ip, option: "ip")
            let netmask = try Self.ipv4(mask ?? "255.255.255.0", option: "mask")
            guard ckvm_netif_set_ipv4(name, address, netmask) == 0 else {
                throw .interfaceConfig(name: name, setting: "IPv4 address \(ip)/\(mask ?? "255.255.255.0")", errno: errno)
            }
        }
        if let hostMac {
            guard ckvm_netif_set_mac(name, hostMac) == 0 else {
                throw .interfaceConfig(name: name, setting: "MAC address \(MACAddress.format(hostMac))", errno: errno)
            }
        }
        if let mtu {
            guard ckvm_netif_set_mtu(name, Int32(mtu)) == 0 else {
                throw .interfaceConfig(name: name, setting: "MTU \(mtu)", errno: errno)
            }
        }
        guard ckvm_netif_up(name) == 0 else { throw .interfaceConfig(name: name, setting: "state (up)", errno: errno) }
    }

    /// Parses dotted-quad IPv4 into network byte order.
    static func ipv4(_ text: String, option: String) throws(NetError) -> UInt32 {
        var addr = in_addr()
        guard inet_pton(AF_INET, text, &addr) == 1 else { throw .invalidIPv4(option: option, value: text) }
        return addr.s_addr
    }

    /// Which offloads the kernel may leave to the guest (TUN_F_* bits); per interface, so any queue fd does.
    func setOffload(_ flags: UInt32) throws(NetError) {
        guard ckvm_tun_set_offload(fds[0], flags) == 0 else {
            throw .tapFailed(name: name, operation: "TUNSETOFFLOAD", errno: errno)
        }
    }

    /// Attaches or detaches queue `index` of a multi-queue TAP, so that the kernel steers received
    /// frames only to queues whose RX queue the driver uses.
    func setQueue(_ index: Int, attached wanted: Bool) throws(NetError) {
        guard multiQueue, attached[index] != wanted else { return }
        guard ckvm_tun_set_queue(fds[index], wanted ? 1 : 0) == 0 else {
            throw .tapFailed(name: name, operation: wanted ? "TUNSETQUEUE attach" : "TUNSETQUEUE detach", errno: errno)
        }
        attached[index] = wanted
    }

    enum ReadResult: Equatable {
        /// Header and frame, this many bytes.
        case frame(Int)
        case empty
        /// The kernel dropped one frame (it did not fit the buffers, or another error).
        case dropped
    }

    /// Reads one header+frame from queue `index` into `iovecs`.
    func read(queue index: Int, into iovecs: [iovec]) -> ReadResult {
        while true {
            let n = iovecs.withUnsafeBufferPointer { readv(fds[index], $0.baseAddress, Int32($0.count)) }
            if n >= 0 { return .frame(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .empty
            default: return .dropped
            }
        }
    }

    /// Writes one header+frame to queue `index`; false when the kernel refused it (the frame is lost,
    /// as on a wire).
    func write(queue index: Int, from iovecs: [iovec]) -> Bool {
        while true {
            let n = iovecs.withUnsafeBufferPointer { writev(fds[index], $0.baseAddress, Int32($0.count)) }
            if n >= 0 { return true }
            if errno != EINTR { return false }
        }
    }
}
