import Foundation
import Glibc
import XCTest
@testable import Virtio

final class VsockTests: XCTestCase {
    private let cid: UInt64 = 3
    private var directory = ""
    private var socketPath: String { directory + "/v.sock" }

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "vsock-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The guest's side: rx buffers posted, packets sent on tx, packets read back from rx.
    private final class Guest {
        let driver: TestDriver
        private var seen: UInt16 = 0

        init(rxBuffers: Int = 32) throws {
            driver = try TestDriver(queues: 3)
            for _ in 0..<rxBuffers { try driver.postWritable(0, length: 4096) }
            try driver.postWritable(2, length: 8)
        }

        func send(_ header: VsockHeader, _ payload: [UInt8] = []) throws {
            var h = header
            h.len = UInt32(payload.count)
            try driver.postReadable(1, h.bytes + payload)
            try driver.kick(1)
        }

        /// The next packet the device put on rx (waits up to 3 s).
        func receive() throws -> (header: VsockHeader, payload: [UInt8])? {
            guard try waitUntil(3, { try driver.rings[0].usedIdx() != seen }) else { return nil }
            let element = try driver.rings[0].usedElement(seen)
            seen &+= 1
            let bytes = try driver.memory.read(at: try driver.bufferAddress(0, descriptor: element.id), count: Int(element.len))
            guard let header = VsockHeader(bytes) else { return nil }
            return (header, Array(bytes.dropFirst(VsockHeader.size)))
        }
    }

    private func header(_ op: VsockOp, guestPort: UInt32, hostPort: UInt32, bufAlloc: UInt32 = 64 << 10, fwdCnt: UInt32 = 0) -> VsockHeader {
        var h = VsockHeader(srcCid: cid, dstCid: 2, srcPort: guestPort, dstPort: hostPort, op: op)
        h.bufAlloc = bufAlloc
        h.fwdCnt = fwdCnt
        return h
    }

    private func readLine(_ fd: Int32) -> String {
        var line = [UInt8](), byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
        return String(decoding: line, as: UTF8.self)
    }

    private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count), got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
            if n <= 0 { break }
            got += n
        }
        return Array(out.prefix(got))
    }

    /// A blocking client of `path` with a 3 s receive timeout.
    /// A device on `socketPath` activated by a test guest (returned); the device lives, and is reset, until
    /// the test ends.
    private func activatedDevice() throws -> Guest {
        let device = try VirtioVsock(cid: cid, socketPath: socketPath)
        let guest = try Guest()
        try device.activate(guest.driver.activation(features: 0))
        addTeardownBlock { device.reset() }
        return guest
    }

    private func client(_ path: String) throws -> Int32 {
        let fd = try UnixSocket.connect(to: path)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func testHostConnectHandshakeThenDataBothWaysThenShutdown() throws {
        let guest = try activatedDevice()

        let host = try client(socketPath)
        defer { close(host) }
        XCTAssertEqual(write(host, "CONNECT 1234\n", 13), 13)
        let request = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(request.header.op, .request)
        XCTAssertEqual(request.header.srcCid, 2)
        XCTAssertEqual(request.header.dstCid, cid)
        XCTAssertEqual(request.header.dstPort, 1234)
        XCTAssertGreaterThanOrEqual(request.header.srcPort, 1 << 30)
        XCTAssertEqual(request.header.bufAlloc, VsockConnection.bufAlloc)
        let local = request.header.srcPort

        try guest.send(header(.response, guestPort: 1234, hostPort: local))
        XCTAssertEqual(readLine(host), "OK \(local)")

        XCTAssertEqual(write(host, "ping", 4), 4)
        let data = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(data.header.op, .rw)
        XCTAssertEqual(data.header.dstPort, 1234)
        XCTAssertEqual(data.payload, Array("ping".utf8))

        try guest.send(header(.rw, guestPort: 1234, hostPort: local, fwdCnt: 4), Array("pong".utf8))
        XCTAssertEqual(readExactly(host, 4), Array("pong".utf8))

        try guest.send(header(.shutdown, guestPort: 1234, hostPort: local).with(flags: 3))
        let rst = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(rst.header.op, .rst, "a full shutdown is answered with RST")
        var byte: UInt8 = 0
        XCTAssertEqual(read(host, &byte, 1), 0, "the host client sees EOF")
        XCTAssertGreaterThan(guest.driver.interrupt.count(queue: 0), 0)
        XCTAssertGreaterThan(guest.driver.interrupt.count(queue: 1), 0)
    }

    func testGuestConnectsToHostPortWithCreditFlowControl() throws {
        let listener = try UnixSocket.listen(at: socketPath + "_5000")
        defer { close(listener) }
        let guest = try activatedDevice()

        // The guest can buffer only 8 bytes until it says it consumed them.
        try guest.send(header(.request, guestPort: 49152, hostPort: 5000, bufAlloc: 8))
        let response = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(response.header.op, .response)
        XCTAssertEqual(response.header.srcPort, 5000)
        XCTAssertEqual(response.header.dstPort, 49152)
        var accepted: Int32 = -1
        XCTAssertTrue(waitUntil { accepted = accept(listener, nil, nil); return accepted >= 0 })
        defer { close(accepted) }

        XCTAssertEqual(write(accepted, "0123456789abcdef", 16), 16)
        let first = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(first.header.op, .rw)
        XCTAssertEqual(first.payload, Array("01234567".utf8), "no more than the guest's credit")
        let creditRequest = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(creditRequest.header.op, .creditRequest)

        try guest.send(header(.creditUpdate, guestPort: 49152, hostPort: 5000, bufAlloc: 8, fwdCnt: 8))
        let second = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(second.payload, Array("89abcdef".utf8))

        // Guest data to the host, and the host's credit for it.
        try guest.send(header(.rw, guestPort: 49152, hostPort: 5000, bufAlloc: 8, fwdCnt: 16), Array("hello host".utf8))
        _ = fcntl(accepted, F_SETFL, fcntl(accepted, F_GETFL) & ~O_NONBLOCK)
        XCTAssertEqual(readExactly(accepted, 10), Array("hello host".utf8))

        // The host closes: the guest reads EOF (SHUTDOWN SEND), closes too, and gets its RST.
        close(accepted)
        accepted = -1
        let shutdown = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(shutdown.header.op, .shutdown)
        XCTAssertEqual(shutdown.header.flags, VsockHeader.shutdownSend)
        XCTAssertEqual(shutdown.header.fwdCnt, 10, "the host took 10 bytes")
        try guest.send(header(.shutdown, guestPort: 49152, hostPort: 5000, bufAlloc: 8, fwdCnt: 16).with(flags: 3))
        XCTAssertEqual(try XCTUnwrap(try guest.receive()).header.op, .rst)
    }

    func testGuestDataWaitsForASlowHostReaderInOrderAndCreditIsReturned() throws {
        let listener = try UnixSocket.listen(at: socketPath + "_5001")
        defer { close(listener) }
        let guest = try activatedDevice()
        try guest.send(header(.request, guestPort: 49155, hostPort: 5001))
        XCTAssertEqual(try XCTUnwrap(try guest.receive()).header.op, .response)
        var accepted: Int32 = -1
        XCTAssertTrue(waitUntil { accepted = accept(listener, nil, nil); return accepted >= 0 })
        defer { close(accepted) }

        // 240 KiB, within the device's 256 KiB credit, more than the socket buffers while the host does not read.
        let chunks = (0..<4).map { k in (0..<(60 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ k) } }
        for chunk in chunks { try guest.send(header(.rw, guestPort: 49155, hostPort: 5001), chunk) }
        XCTAssertTrue(try waitUntil { try guest.driver.used(1).count == 5 })
        _ = fcntl(accepted, F_SETFL, fcntl(accepted, F_GETFL) & ~O_NONBLOCK)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(accepted, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        XCTAssertEqual(readExactly(accepted, 240 << 10), chunks.flatMap { $0 })

        let update = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(update.header.op, .creditUpdate, "half the buffer consumed: the guest hears of it unasked")
        XCTAssertGreaterThanOrEqual(update.header.fwdCnt, VsockConnection.bufAlloc / 2)
    }

    func testAMalformedConnectLineClosesTheClient() throws {
        let guest = try activatedDevice()
        let host = try client(socketPath)
        defer { close(host) }
        XCTAssertEqual(write(host, "CONN", 4), 4)
        usleep(20_000)
        XCTAssertEqual(write(host, "ECT x\n", 6), 6)
        var byte: UInt8 = 0
        XCTAssertEqual(read(host, &byte, 1), 0, "closed")
        XCTAssertEqual(try guest.driver.rings[0].usedIdx(), 0, "the guest saw nothing")
    }

    func testGuestConnectToAPortNobodyListensOnIsReset() throws {
        let guest = try activatedDevice()
        try guest.send(header(.request, guestPort: 49153, hostPort: 6000))
        let reply = try XCTUnwrap(try guest.receive())
        XCTAssertEqual(reply.header.op, .rst)
        XCTAssertEqual(reply.header.srcPort, 6000)
        XCTAssertEqual(reply.header.dstPort, 49153)
        XCTAssertEqual(reply.header.dstCid, cid)

        // Data for a connection that does not exist is answered with RST too.
        try guest.send(header(.rw, guestPort: 49154, hostPort: 6001), [1, 2, 3])
        XCTAssertEqual(try XCTUnwrap(try guest.receive()).header.op, .rst)
    }

    func testSocketInUseIsRefusedAndAStaleOneReplaced() throws {
        let device = try VirtioVsock(cid: cid, socketPath: socketPath)
        XCTAssertThrowsError(try VirtioVsock(cid: 4, socketPath: socketPath)) { error in
            XCTAssertEqual(error as? VsockError, .socket(.inUse(path: socketPath)))
            XCTAssertTrue("\(error)".hasPrefix("vsock socket \(socketPath) is in use"), "\(error)")
        }
        XCTAssertThrowsError(try VirtioVsock(cid: 2, socketPath: directory + "/other.sock")) {
            XCTAssertEqual($0 as? VsockError, .invalidCID(2))
        }

        // A socket file whose listener is gone (a crashed VMM) is replaced.
        let stale = directory + "/stale.sock"
        close(try UnixSocket.listen(at: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: stale))
        XCTAssertNoThrow(try VirtioVsock(cid: 5, socketPath: stale))
        XCTAssertEqual(device.cid, cid)
    }

    func testTransportResetIsSentAfterRestoreOnly() throws {
        let device = try VirtioVsock(cid: cid, socketPath: socketPath)
        var config = [UInt8](repeating: 0xff, count: 8)
        config.withUnsafeMutableBytes { device.readConfig(offset: 0, data: $0) }
        XCTAssertEqual(config, [3, 0, 0, 0, 0, 0, 0, 0])

        let plain = try Guest()
        try device.activate(plain.driver.activation(features: 0))
        usleep(50_000)
        XCTAssertEqual(try plain.driver.rings[2].usedIdx(), 0, "no event on a plain boot")
        device.pause()
        let state = try device.saveDeviceState()
        device.resume()
        device.reset()

        XCTAssertThrowsError(try device.restoreDeviceState(Data([4, 0, 0, 0, 0, 0, 0, 0]), version: 1))
        try device.restoreDeviceState(state, version: device.deviceStateVersion)
        let restored = try Guest()
        try device.activate(restored.driver.activation(features: 0))
        defer { device.reset() }
        XCTAssertTrue(try waitUntil { try restored.driver.rings[2].usedIdx() == 1 })
        let event = try restored.driver.rings[2].usedElement(0)
        XCTAssertEqual(event.len, 4)
        XCTAssertEqual(try restored.driver.memory.load(UInt32.self, at: try restored.driver.bufferAddress(2, descriptor: event.id)),
                       VsockEvent.transportReset)
        XCTAssertEqual(restored.driver.interrupt.count(queue: 2), 1)
    }
}

private extension VsockHeader {
    func with(flags: UInt32) -> VsockHeader {
        var h = self
        h.flags = flags
        return h
    }
}
