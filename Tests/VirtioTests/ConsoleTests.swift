import Foundation
import Glibc
import XCTest
@testable import Virtio

final class ConsoleTests: XCTestCase {
    private func temporaryPath(_ name: String) -> String {
        NSTemporaryDirectory() + "virtio-console-\(getpid())-\(name)"
    }

    func testOutputGoesToTheFileBackend() throws {
        let path = temporaryPath("out")
        defer { unlink(path) }
        let device = try VirtioConsole(backend: .file(path))
        XCTAssertEqual(device.path, path)
        XCTAssertEqual(device.deviceFeatures, 0, "no F_SIZE without a tty")
        XCTAssertEqual(device.queueMaxSizes.count, 2)
        let driver = try TestDriver(queues: 2)
        try device.activate(driver.activation(features: 0))
        defer { device.reset() }
        try driver.postReadable(1, Array("hello, ".utf8))
        try driver.postReadable(1, Array("console\n".utf8))
        try driver.kick(1)
        XCTAssertTrue(try waitUntil { try driver.used(1).count == 2 })
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "hello, console\n")
        XCTAssertGreaterThan(driver.interrupt.count(queue: 1), 0)
    }

    func testSocketInputIsQueuedUntilBuffersArePostedAndSurvivesSnapshots() throws {
        let path = temporaryPath("sock")
        let device = try VirtioConsole(backend: .socket(path))
        let driver = try TestDriver(queues: 2)
        try device.activate(driver.activation(features: 0))
        defer { device.reset() }

        let client = try UnixSocket.connect(to: path)
        defer { close(client) }
        XCTAssertEqual(send(client, "typed early", 11, 0), 11)
        usleep(100_000)
        XCTAssertEqual(try driver.rings[0].usedIdx(), 0, "nothing delivered without buffers")
        device.pause()
        XCTAssertEqual(String(decoding: try device.saveDeviceState(), as: UTF8.self), "typed early", "pending input is device state")
        device.resume()

        let first = try driver.postWritable(0, length: 5)
        let second = try driver.postWritable(0, length: 64)
        try driver.kick(0)
        XCTAssertTrue(try waitUntil { try driver.used(0).count == 2 })
        XCTAssertEqual(try driver.used(0).map(\.len), [5, 6])
        XCTAssertEqual(try driver.memory.read(at: first, count: 5) + driver.memory.read(at: second, count: 6), Array("typed early".utf8))

        // Output goes back to the client.
        try driver.postReadable(1, Array("echo".utf8))
        try driver.kick(1)
        var reply = [UInt8](repeating: 0, count: 16)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        XCTAssertTrue(waitUntil { recv(client, &reply, reply.count, Int32(MSG_PEEK)) == 4 })
        XCTAssertEqual(Array(reply.prefix(4)), Array("echo".utf8))

        // A second VMM cannot take the socket over.
        XCTAssertThrowsError(try VirtioConsole(backend: .socket(path))) { error in
            XCTAssertEqual(error as? ConsoleBackendError, .socket(.inUse(path: path)))
        }
    }

    func testPtyInputReachesTheGuestAndRestoredInputIsDelivered() throws {
        let device = try VirtioConsole(backend: .pty)
        let pty = try XCTUnwrap(device.path)
        XCTAssertTrue(pty.hasPrefix("/dev/pts/"), pty)
        try device.restoreDeviceState(Data("restored ".utf8), version: 1)
        let driver = try TestDriver(queues: 2)
        let buffer = try driver.postWritable(0, length: 64)
        try device.activate(driver.activation(features: 0))
        defer { device.reset() }
        XCTAssertTrue(try waitUntil { try driver.used(0).count == 1 }, "restored input is delivered at activation")
        XCTAssertEqual(try driver.memory.read(at: buffer, count: 9), Array("restored ".utf8))

        let slave = open(pty, O_RDWR | O_NOCTTY)
        XCTAssertGreaterThanOrEqual(slave, 0)
        defer { close(slave) }
        XCTAssertEqual(write(slave, "ls\r", 3), 3)
        let next = try driver.postWritable(0, length: 64)
        try driver.kick(0)
        XCTAssertTrue(try waitUntil { try driver.used(0).count == 2 })
        XCTAssertEqual(try driver.memory.read(at: next, count: 3), Array("ls\r".utf8), "raw mode: bytes as typed")
    }

    func testNullBackendDiscardsOutput() throws {
        let device = try VirtioConsole(backend: .null)
        XCTAssertNil(device.path)
        let driver = try TestDriver(queues: 2)
        try device.activate(driver.activation(features: 0))
        defer { device.reset() }
        try driver.postReadable(1, Array("gone".utf8))
        try driver.kick(1)
        XCTAssertTrue(try waitUntil { try driver.used(1).count == 1 })
    }
}
