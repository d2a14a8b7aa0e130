import Foundation
import TestSupport
import XCTest

/// The checkguest's virtio-PCI drivers under QEMU+KVM (q35 + SeaBIOS, modern-only devices with
/// `disable-legacy=on`): blk on a temporary raw image, net on a TAP the test creates, rng, and a virtconsole
/// on a pipe chardev. QEMU is the reference: what passes here is what our VMM's devices must also pass.
/// vsock cannot be tested here (no /dev/vhost-vsock). Needs root for the TAP; without qemu, /dev/kvm or root
/// the tests skip, except under CI where they fail. See docs/checkguest.md ("virtio").
final class CheckguestVirtioQEMUTests: XCTestCase {
    /// Not the guest's defaults (192.168.249.x), so a VMM test using those on this host does not collide.
    static let hostIP = "192.168.248.1"
    static let guestIP = "192.168.248.2"
    static let mac = "52:54:00:c9:e5:01"
    static var netAppend: String { "net_ip=\(guestIP) net_peer=\(hostIP)" }

    override func setUpWithError() throws {
        try Checkguest.requireQEMU()
    }

    /// A sparse raw image in /tmp; removed by the caller.
    private func makeDisk(mib: Int) throws -> String {
        let path = "/tmp/checkguest-disk-\(getpid())-\(UInt32.random(in: 0 ... .max)).raw"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(mib) << 20) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return path
    }

    /// Host pings through the TAP after forgetting the guest's MAC (so the guest answers an ARP request first).
    private func assertHostPings(_ tap: TapDevice, count: UInt16 = 3, file: StaticString = #filePath,
                                 line: UInt = #line) throws {
        try tap.flushNeighbours()
        for seq in 1 ... count {
            let rtt = try ICMPEcho.ping(Self.guestIP, sequence: seq, timeout: 2)
            XCTAssertNotNil(rtt, "no echo reply from the guest to host ping #\(seq)", file: file, line: line)
            if let rtt { print("host ping #\(seq) of the checkguest: \(String(format: "%.3f", rtt * 1000)) ms") }
        }
    }

    /// One q35 boot with blk (continuous `blk:16` workload on CPU 1, serial id), net on a TAP, rng and a virtconsole:
    /// every device probed with MSI-X, BLK ok passes, blkcheck, NET ok + host pings (ARP answered), RNG ok,
    /// console output both ways, interrupts counted per device, ticks undisturbed.
    func testQ35BlkNetRngConsole() throws {
        try Require.tap()
        let tap = try TapDevice(hostAddress: Self.hostIP)
        defer { tap.remove() }
        let disk = try makeDisk(mib: 64)
        defer { unlink(disk) }
        let vcon = try ConsolePipe()
        defer { vcon.remove() }
        let extra = QEMUVirtio.blk(image: disk, serial: "cg-serial-42") + QEMUVirtio.net(tap: tap.name, mac: Self.mac)
            + QEMUVirtio.rng() + QEMUVirtio.console(pipeBase: vcon.base)
        // blk runs on CPU 1 (its request queue's MSI-X follows it; blkcheck on the BSP takes it back), the
        // BSP stays idle and serves the network and the console (a workload slice there would add up to 5 ms)
        let boot = try Checkguest.boot(.init(machine: .q35, append: "workload=idle,blk:16 \(Self.netAppend)",
                                             extraArguments: extra))
        let guest = boot.guest
        defer { guest.stop() }
        print("checkguest boot time to GUEST-BOOTED, q35 with 4 virtio devices: \(String(format: "%.2f", boot.seconds)) s")

        let lines = guest.allLines
        for dev in ["blk", "net", "rng", "console"] {
            let line = lines.first { $0.hasPrefix("VIRTIO dev=\(dev) ") }
            XCTAssertNotNil(line, "no VIRTIO line for \(dev)")
            guard let line else { continue }
            XCTAssertNotNil(line.range(of: #"^VIRTIO dev=\w+ bdf=00:[0-9a-f]{2}\.[0-7] features=0x[0-9a-f]+ queues=\d+ msix=on "#,
                                       options: .regularExpression), line)
        }
        let blkLine = try XCTUnwrap(lines.first { $0.hasPrefix("VIRTIO dev=blk ") })
        let features = try XCTUnwrap(Checkguest.field("features", in: blkLine).flatMap { UInt64($0.dropFirst(2), radix: 16) })
        for bit in [32, 28, 29] { XCTAssertNotEqual(features & (1 << bit), 0, "blk feature bit \(bit) not negotiated") }
        XCTAssertEqual(Checkguest.field("queues", in: blkLine), "1")
        XCTAssertTrue(lines.contains("BLK id=cg-serial-42"), "GET_ID")
        XCTAssertTrue(lines.contains { $0.hasPrefix("BLK capacity=131072 ro=0 flush=1 ") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("RNG ok bytes=256") })

        let net = try Checkguest.waitAny(guest, #"^NET ok rtt_us=(\d+) mac=\#(Self.mac) "#, timeout: 10)
        print("guest → host ICMP round trip at boot: \(net[1]) µs")
        // 16 MiB = 4096 blocks = 32768 sectors per pass
        try Checkguest.waitAny(guest, #"^BLK ok written=32768 gen=1 verified=32768 pass=1 blocks=4096$"#, timeout: 20)
        XCTAssertTrue(vcon.waitFor("VCON hello from checkguest\n"), "console output: \(vcon.output())")

        try assertHostPings(tap)
        try vcon.send("hello from the host\n")
        try Checkguest.waitAny(guest, #"^VCON rx hello from the host$"#, timeout: 10)
        guest.send("vcon typed on the serial port\n")
        try Checkguest.waitAny(guest, #"^VCON sent bytes=25$"#, timeout: 10)
        XCTAssertTrue(vcon.waitFor("typed on the serial port\n"), "console output: \(vcon.output())")

        // a few more passes (each rewrites with a new generation and verifies), then everything re-read
        while true {
            let m = try guest.waitFor(#"^BLK ok written=\d+ gen=(\d+) "#, timeout: 20)
            if Int(m[1]) ?? 0 >= 3 { break }
        }
        guest.send("blkcheck\n")
        try guest.waitFor(#"^BLK ok verified=32768$"#, timeout: 20)
        guest.send("rngcheck\n")
        try guest.waitFor(#"^RNG ok bytes=256 "#, timeout: 10)
        guest.send("netcheck\n")
        try guest.waitFor(#"^NET ok rtt_us=\d+ mac=\#(Self.mac) "#, timeout: 10)
        try Checkguest.assertTickRate(guest)

        guest.send("stats\n")
        let stats = try guest.waitFor(#"^STATS .* virtio_irqs=blk:(\d+),net:(\d+),rng:(\d+),console:(\d+) .*$"#, timeout: 10)
        for (i, dev) in ["blk", "net", "rng", "console"].enumerated() {
            XCTAssertGreaterThan(Int(stats[i + 1]) ?? 0, 0, "no MSI-X interrupt counted for \(dev): \(stats[0])")
        }
        XCTAssertGreaterThanOrEqual(Int(Checkguest.field("net_arp_answered", in: stats[0]) ?? "") ?? 0, 1, stats[0])
        XCTAssertGreaterThanOrEqual(Int(Checkguest.field("net_echo_answered", in: stats[0]) ?? "") ?? 0, 3, stats[0])
        let all = guest.allLines
        XCTAssertFalse(all.contains { $0.hasPrefix("PANIC") || $0.hasPrefix("CLOCK ") || $0.contains(" bad ") },
                       all.joined(separator: "\n"))
        guest.send("poweroff\n")
        XCTAssertEqual(guest.waitForExit(timeout: 15), 0, "QEMU did not exit after the guest powered off")
    }

    /// A snapshot (migration to a file) while the blk workload writes and verifies, then a restore: the
    /// workload continues with later generations, blkcheck verifies every block written before, the guest
    /// still answers pings and its netcheck works.
    func testQ35VirtioSnapshotRestore() throws {
        try Require.tap()
        let tap = try TapDevice(hostAddress: Self.hostIP)
        defer { tap.remove() }
        let disk = try makeDisk(mib: 32)
        let monitorPath = "/tmp/checkguest-mon-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
        let snapshot = GuestMemoryFile.temporaryPath(tag: "checkguest-virtio-snap")
        defer {
            unlink(disk)
            unlink(monitorPath)
            unlink(snapshot)
        }
        let devices = QEMUVirtio.blk(image: disk) + QEMUVirtio.net(tap: tap.name, mac: Self.mac)
        var options = QEMU.Options(machine: .q35, append: "workload=blk:8 \(Self.netAppend)",
                                   extraArguments: devices + QEMUMonitor.arguments(socket: monitorPath))
        let source = try Checkguest.boot(options).guest
        defer { source.stop() }
        try Checkguest.waitAny(source, #"^NET ok rtt_us="#, timeout: 10)
        while true {
            let m = try source.waitFor(#"^BLK ok written=\d+ gen=(\d+) "#, timeout: 20)
            if Int(m[1]) ?? 0 >= 2 { break }
        }
        let monitor = try QEMUMonitor(socket: monitorPath)
        try monitor.command("migrate \"exec:cat > \(snapshot)\"")
        let deadline = Date().addingTimeInterval(60)
        while !(try monitor.command("info migrate")).contains("Migration status: completed") {
            XCTAssertLessThan(Date(), deadline, "migration to a file did not complete")
            if Date() > deadline { return }
            usleep(100_000)
        }
        let lastGen = try XCTUnwrap(source.allLines.last { $0.hasPrefix("BLK ok written=") }
            .flatMap { Checkguest.field("gen", in: $0) }.flatMap { Int($0) })
        _ = try? monitor.command("quit", timeout: 5)
        _ = source.waitForExit(timeout: 10)

        unlink(monitorPath)
        options.extraArguments = devices + ["-incoming", "exec:cat \(snapshot)"]
        let restored = try QEMU.launch(options)
        defer { restored.stop() }
        while true {
            let m = try restored.waitFor(#"^BLK ok written=\d+ gen=(\d+) "#, timeout: 30)
            if Int(m[1]) ?? 0 > lastGen { break }
        }
        restored.send("blkcheck\n")
        try restored.waitFor(#"^BLK ok verified=16384$"#, timeout: 20)
        try assertHostPings(tap)
        restored.send("netcheck\n")
        try restored.waitFor(#"^NET ok rtt_us=\d+ mac=\#(Self.mac) "#, timeout: 10)
        let lines = restored.allLines
        XCTAssertFalse(lines.contains { $0.hasPrefix("GUEST-BOOTED") }, "the restored guest must not boot again")
        XCTAssertFalse(lines.contains { $0.hasPrefix("PANIC") || $0.hasPrefix("CLOCK ") || $0.contains(" bad ") },
                       lines.joined(separator: "\n"))
    }

    /// A read-only disk (VIRTIO_BLK_F_RO: the workload only reads, the image stays as it was) and rng, with
    /// their BARs moved above 4 GiB by the guest (`pci_bar64=`): the guest maps BARs wherever they are.
    func testQ35ReadOnlyDiskAndBarsAbove4GiB() throws {
        let disk = try makeDisk(mib: 8)
        defer { unlink(disk) }
        let content = Data((0 ..< (1 << 16)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try FileHandle(forWritingTo: URL(fileURLWithPath: disk)).write(content)
        let before = try Data(contentsOf: URL(fileURLWithPath: disk))
        let boot = try Checkguest.boot(.init(machine: .q35, append: "workload=blk pci_bar64=0x800000000",
                                             extraArguments: QEMUVirtio.blk(image: disk, readOnly: true)
                                                 + QEMUVirtio.rng()))
        let guest = boot.guest
        defer { guest.stop() }
        let lines = guest.allLines
        for dev in ["blk", "rng"] {
            let line = try XCTUnwrap(lines.first { $0.hasPrefix("VIRTIO dev=\(dev) ") })
            let common = try XCTUnwrap(Checkguest.field("common", in: line).flatMap { UInt64($0.dropFirst(2), radix: 16) })
            XCTAssertGreaterThanOrEqual(common, 0x8_0000_0000, "BAR not relocated above 4 GiB: \(line)")
            XCTAssertEqual(Checkguest.field("msix", in: line), "on", line)
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("BLK capacity=16384 ro=1 ") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("RNG ok bytes=256") })
        try Checkguest.waitAny(guest, #"^BLK ro sectors=16384$"#, timeout: 10)
        try Checkguest.waitAny(guest, #"^BLK ro read=16384 pass=1$"#, timeout: 10)
        try guest.waitFor(#"^BLK ro read=\d+ pass=\d+$"#, timeout: 5) // keeps reading
        guest.send("blkcheck\n")
        try guest.waitFor(#"^BLK ro$"#, timeout: 10)
        guest.send("stats\n")
        let stats = try guest.waitFor(#"^STATS .* virtio_irqs=blk:(\d+),rng:(\d+)"#, timeout: 10)
        XCTAssertGreaterThan(Int(stats[1]) ?? 0, 0, stats[0])
        XCTAssertGreaterThan(Int(stats[2]) ?? 0, 0, stats[0])
        guest.send("poweroff\n")
        XCTAssertEqual(guest.waitForExit(timeout: 15), 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: disk)), before, "a read-only disk was written")
        XCTAssertFalse(guest.allLines.contains { $0.hasPrefix("PANIC") || $0.contains(" bad ") })
    }

    /// blkcheck notices a sector changed behind the guest's back (written into the image from the host), and
    /// blkbench measures (figures printed; the bench region's pattern is forgotten afterwards).
    func testQ35BlkDetectsHostCorruptionAndBench() throws {
        let disk = try makeDisk(mib: 64)
        defer { unlink(disk) }
        let boot = try Checkguest.boot(.init(machine: .q35, append: "workload=blk:4:2",
                                             extraArguments: QEMUVirtio.blk(image: disk)))
        let guest = boot.guest
        defer { guest.stop() }
        XCTAssertTrue(guest.allLines.contains("BLK id="), "QEMU without serial= answers GET_ID with an empty id")
        try Checkguest.waitAny(guest, #"^BLK done passes=2 written=16384 gen=2 bad=0$"#, timeout: 20)
        guest.send("blkcheck\n")
        try guest.waitFor(#"^BLK ok verified=8192$"#, timeout: 10)

        // flip one byte of sector 1000 in the image (the guest reads through QEMU, which reads the file)
        let fd = open(disk, O_RDWR | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var byte: UInt8 = 0
        XCTAssertEqual(pread(fd, &byte, 1, 1000 * 512 + 100), 1)
        byte ^= 0x5a
        XCTAssertEqual(pwrite(fd, &byte, 1, 1000 * 512 + 100), 1)
        close(fd)
        guest.send("blkcheck\n")
        try guest.waitFor(#"^BLK bad sector=1000 expect_gen=2 found_gen=2 src=blkcheck$"#, timeout: 10)
        try guest.waitFor(#"^BLK bad sector=1000 bad_sectors=1 verified=8192 src=blkcheck$"#, timeout: 10)

        guest.send("blkbench\n")
        let bench = try guest.waitFor(
            #"^BLKBENCH seq_write_mbps=([\d.]+) seq_read_mbps=([\d.]+) rand_write_iops=(\d+) rand_read_iops=(\d+) region_mib=64 .* errors=0 "#,
            timeout: 60)
        print("blkbench under QEMU+KVM (q35, raw image in /tmp): \(bench[0])")
        for i in 1 ... 4 { XCTAssertGreaterThan(Double(bench[i]) ?? 0, 0, bench[0]) }
        guest.send("blkcheck\n") // the bench overwrote the whole pattern area: nothing left to verify
        try guest.waitFor(#"^BLK ok verified=0$"#, timeout: 10)
        XCTAssertFalse(guest.allLines.contains { $0.hasPrefix("PANIC") })
    }
}


extension Checkguest {
    /// Like `GuestProcess.waitFor`, but also matches lines printed before (any line so far, then new ones),
    /// for markers whose order relative to others is not fixed (NET ok, the first BLK ok, …).
    @discardableResult
    static func waitAny(_ guest: GuestProcess, _ pattern: String, timeout: TimeInterval) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            for line in guest.allLines {
                let range = NSRange(line.startIndex..., in: line)
                if let m = regex.firstMatch(in: line, range: range) {
                    return (0 ..< m.numberOfRanges).map { i in
                        Range(m.range(at: i), in: line).map { String(line[$0]) } ?? ""
                    }
                }
            }
            if Date() > deadline || !guest.process.isRunning {
                throw GuestWaitError(what: "no line matched /\(pattern)/ within \(timeout)s",
                                     output: guest.allOutput)
            }
            usleep(20_000)
        }
    }
}
