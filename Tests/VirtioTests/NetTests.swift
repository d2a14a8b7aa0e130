import Foundation
import Glibc
import XCTest
@testable import Virtio

final class NetTests: XCTestCase {
    private let guestMAC: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
    private let hostMAC: [UInt8] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]
    /// A /24 and interface names unlikely to collide with anything else on the host.
    private var subnet: String { "10.213.\(20 + getpid() % 200)" }
    private func tapName(_ suffix: String) -> String { "vtn\(getpid())\(suffix)" }

    private func makeDevice(_ options: NetDeviceOptions) throws -> VirtioNet {
        do {
            return try VirtioNet(options)
        } catch .needsNetAdmin, .tunMissing, .tunAccess {
            throw XCTSkip("TAP interfaces need /dev/net/tun and CAP_NET_ADMIN")
        }
    }

    func testMACParsingRejectsMalformedAndMulticast() throws {
        XCTAssertEqual(try MACAddress.parse("52:54:00:AB:cd:0f"), [0x52, 0x54, 0, 0xab, 0xcd, 0x0f])
        for bad in ["52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "52:54:00:ab:cd:g0", "52:54:00:ab:cd:1",
                    "52-54-00-ab-cd-ef", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", ""] {
            XCTAssertThrowsError(try MACAddress.parse(bad), bad) { error in
                XCTAssertTrue("\(error)".contains("MAC address \"\(bad)\" is invalid"), "\(error)")
            }
        }
        let random = MACAddress.random()
        XCTAssertEqual(random[0] & 0x03, 0x02, "locally administered unicast")
        XCTAssertNoThrow(try MACAddress.validate(random))
    }

    func testFramesFlowBetweenGuestBuffersAndARealTap() throws {
        let device = try makeDevice(NetDeviceOptions(tap: tapName("a"), ip: "\(subnet).1", mask: "255.255.255.0",
                                                     mac: guestMAC, hostMac: hostMAC))
        XCTAssertEqual(device.tapName, tapName("a"))
        let driver = try TestDriver(queues: 3)
        try device.activate(driver.activation(features: NetFeature.mac | NetFeature.status | NetFeature.ctrlVq))
        defer { device.reset() }

        // Host → guest, before any RX buffer is posted: the host's ARP request for the guest waits in
        // the TAP until the driver posts buffers and kicks.
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        var to = sockaddr_in(family: "\(subnet).2", port: 9999)
        _ = withUnsafePointer(to: &to) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        usleep(100_000)
        XCTAssertEqual(try driver.rings[0].usedIdx(), 0)
        for _ in 0..<8 { try driver.postWritable(0, length: 2048) }
        try driver.kick(0)

        var arp: [UInt8]?
        XCTAssertTrue(try waitUntil {
            for element in try driver.used(0) {
                let bytes = try driver.memory.read(at: try driver.bufferAddress(0, descriptor: element.id), count: Int(element.len))
                if bytes.count >= 12 + 42, bytes[24] == 0x08, bytes[25] == 0x06 { arp = bytes }
            }
            return arp != nil
        }, "an ARP request reaches an RX buffer")
        let frame = try XCTUnwrap(arp)
        XCTAssertEqual(frame[10], 1, "num_buffers = 1")
        XCTAssertEqual(Array(frame[12..<18]), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
        XCTAssertEqual(Array(frame[18..<24]), hostMAC, "sent by the TAP with host_mac")
        XCTAssertEqual(Array(frame[(12 + 38)..<(12 + 42)]), try ipv4Bytes("\(subnet).2"), "who-has the guest")
        XCTAssertGreaterThan(driver.interrupt.count(queue: 0), 0)

        // Guest → host: a UDP datagram to a socket bound on the TAP's address.
        let server = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(server) }
        var local = sockaddr_in(family: "\(subnet).1", port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &local) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(server, $0, length) == 0, getsockname(server, $0, &length) == 0 else { throw XCTSkip("bind: \(errno)") }
            }
        }
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let payload = Array("hello from the guest".utf8)
        let udpFrame = try udpFrame(from: "\(subnet).2", to: "\(subnet).1", port: UInt16(bigEndian: local.sin_port), payload: payload)
        try driver.postReadable(1, [UInt8](repeating: 0, count: 12) + udpFrame)
        try driver.kick(1)
        var received = [UInt8](repeating: 0, count: 256)
        let n = recv(server, &received, received.count, 0)
        XCTAssertEqual(n, payload.count, "errno \(errno)")
        XCTAssertEqual(Array(received.prefix(max(n, 0))), payload)
        XCTAssertTrue(waitUntil { (try? driver.used(1).count) == 1 })
        XCTAssertGreaterThan(driver.interrupt.count(queue: 1), 0)

        let counters = device.counters
        XCTAssertEqual(counters["tx_frames"], 1)
        XCTAssertEqual(counters["tx_bytes"], UInt64(udpFrame.count))
        XCTAssertGreaterThanOrEqual(counters["rx_frames"] ?? 0, 1)
        XCTAssertGreaterThanOrEqual(counters["rx_bytes"] ?? 0, 42)
    }

    func testCreatesVmtapWithRandomMACThatSurvivesRestore() throws {
        let device = try makeDevice(NetDeviceOptions())
        XCTAssertTrue(device.tapName.hasPrefix("vmtap"), device.tapName)
        XCTAssertEqual(device.mac[0] & 0x03, 0x02)
        XCTAssertEqual(device.queueMaxSizes, [256, 256, 256])
        XCTAssertEqual(device.deviceFeatures & NetFeature.mq, 0)
        var config = [UInt8](repeating: 0xaa, count: 12)
        config.withUnsafeMutableBytes { device.readConfig(offset: 0, data: $0) }
        XCTAssertEqual(Array(config[0..<6]), device.mac)
        XCTAssertEqual(Array(config[6..<10]), [1, 0, 1, 0], "link up, one pair")

        let state = try device.saveDeviceState()
        let other = try makeDevice(NetDeviceOptions(mac: guestMAC))
        try other.restoreDeviceState(state, version: device.deviceStateVersion)
        XCTAssertEqual(other.mac, device.mac)
        XCTAssertThrowsError(try other.restoreDeviceState(state.prefix(6), version: 1))
    }

    func testMultiQueueControlQueueSetsPairs() throws {
        let device = try makeDevice(NetDeviceOptions(tap: tapName("m"), numQueues: 4))
        XCTAssertEqual(device.queueMaxSizes.count, 5)
        XCTAssertNotEqual(device.deviceFeatures & NetFeature.mq, 0)
        let driver = try TestDriver(queues: 5)
        try device.activate(driver.activation(features: NetFeature.mac | NetFeature.ctrlVq | NetFeature.mq))
        defer { device.reset() }
        let ok = try driver.postReadable(4, [4, 0, 2, 0], writable: 1)
        let tooMany = try driver.postReadable(4, [4, 0, 3, 0], writable: 1)
        let unknown = try driver.postReadable(4, [1, 0, 1], writable: 1)
        try driver.kick(4)
        XCTAssertTrue(try waitUntil { try driver.used(4).count == 3 })
        XCTAssertEqual(try driver.memory.read(at: ok, count: 1), [0])
        XCTAssertEqual(try driver.memory.read(at: tooMany, count: 1), [1])
        XCTAssertEqual(try driver.memory.read(at: unknown, count: 1), [1])
        device.pause()
        let state = try device.saveDeviceState()
        device.resume()
        XCTAssertEqual(Array(state[6..<8]), [2, 0], "the active pair count is saved")

        // The same name cannot be opened again as a single-queue TAP, nor twice for one queue.
        XCTAssertThrowsError(try VirtioNet(NetDeviceOptions(tap: tapName("m")))) { error in
            XCTAssertEqual(error as? NetError, .tapMismatch(name: tapName("m"), multiQueue: false))
        }
    }

    func testAttachesToAPersistentTapMadeBeforehand() throws {
        let name = tapName("p")
        guard run("/usr/sbin/ip", ["tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr"]) == 0 else {
            throw XCTSkip("ip tuntap add failed (no CAP_NET_ADMIN or no iproute2)")
        }
        defer { _ = run("/usr/sbin/ip", ["link", "del", name]) }
        let device = try makeDevice(NetDeviceOptions(tap: name))
        XCTAssertEqual(device.tapName, name)
        let flags = try String(contentsOfFile: "/sys/class/net/\(name)/flags", encoding: .utf8)
        XCTAssertNotEqual((Int(flags.dropFirst(2).trimmingCharacters(in: .whitespacesAndNewlines), radix: 16) ?? 0) & 1, 0, "brought up")
    }

    private func run(_ tool: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func testTapErrors() throws {
        let first = try makeDevice(NetDeviceOptions(tap: tapName("b")))
        XCTAssertThrowsError(try VirtioNet(NetDeviceOptions(tap: first.tapName))) { error in
            XCTAssertEqual(error as? NetError, .tapBusy(name: first.tapName))
            XCTAssertTrue("\(error)".contains("in use by another process"), "\(error)")
        }
        XCTAssertThrowsError(try VirtioNet(NetDeviceOptions(tap: "a/b"))) { XCTAssertEqual($0 as? NetError, .invalidTapName("a/b")) }
        XCTAssertThrowsError(try VirtioNet(NetDeviceOptions(numQueues: 3))) { XCTAssertEqual($0 as? NetError, .invalidQueueCount(3)) }
        XCTAssertThrowsError(try VirtioNet(NetDeviceOptions(ip: "10.0.0.300"))) {
            XCTAssertEqual($0 as? NetError, .invalidIPv4(option: "ip", value: "10.0.0.300"))
        }
        XCTAssertThrowsError(try VirtioNet(NetDeviceOptions(mac: [1, 2, 3, 4, 5, 6]))) { XCTAssertTrue("\($0)".contains("multicast"), "\($0)") }
    }

    // MARK: frames

    private func ipv4Bytes(_ text: String) throws -> [UInt8] {
        withUnsafeBytes(of: try Tap.ipv4(text, option: "test")) { Array($0) }
    }

    /// Ethernet + IPv4 + UDP (checksum 0: none) from the guest MAC to the host MAC.
    private func udpFrame(from source: String, to destination: String, port: UInt16, payload: [UInt8]) throws -> [UInt8] {
        var ip: [UInt8] = [0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0] + (try ipv4Bytes(source)) + (try ipv4Bytes(destination))
        let total = 20 + 8 + payload.count
        ip[2] = UInt8(total >> 8); ip[3] = UInt8(total & 0xff)
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(ip[i]) << 8 | UInt32(ip[i + 1]) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        ip[10] = UInt8((~sum >> 8) & 0xff); ip[11] = UInt8(~sum & 0xff)
        let udpLength = 8 + payload.count
        let udp: [UInt8] = [0x30, 0x39, UInt8(port >> 8), UInt8(port & 0xff), UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
        return hostMAC + guestMAC + [0x08, 0x00] + ip + udp + payload
    }
}

extension sockaddr_in {
    init(family address: String, port: UInt16) {
        self.init()
        sin_family = sa_family_t(AF_INET)
        sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sin_addr)
    }
}
