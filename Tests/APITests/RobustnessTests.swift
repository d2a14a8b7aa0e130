import Foundation
import VMM
import XCTest

/// Keep-alive, pipelining, concurrency, and clients that misbehave.
final class RobustnessTests: XCTestCase {
    func testKeepAliveServesManyRequestsOnOneConnection() throws {
        let server = try TestServer()
        let connection = try server.connect()
        for _ in 0..<50 {
            XCTAssertEqual(try connection.call("GET", "vmm.ping").status, 200)
        }
        XCTAssertEqual(try connection.call("PUT", "vm.boot").status, 204)
        XCTAssertEqual(try connection.call("GET", "vm.info").status, 200)
    }

    func testConnectionCloseIsHonoured() throws {
        let server = try TestServer()
        let connection = try server.connect()
        try connection.send(RawHTTP.request("GET", "vmm.ping", close: true))
        let reply = try connection.readReply()
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.headers["connection"], "close")
        XCTAssertTrue(connection.isClosedByServer())
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let server = try TestServer()
        // The first command is the slowest: its answer must still come first.
        server.vmm.delay { if case .pause = $0 { 0.3 } else { 0 } }
        let connection = try server.connect()
        try connection.send(RawHTTP.request("PUT", "vm.pause") + RawHTTP.request("GET", "vmm.ping")
                            + RawHTTP.request("PUT", "vm.boot", body: "{}") + RawHTTP.request("GET", "vm.counters")
                            + RawHTTP.request("GET", "nope"))
        let statuses = try (0..<5).map { _ in try connection.readReply().status }
        XCTAssertEqual(statuses, [204, 200, 400, 200, 404])
        let commands = server.vmm.commands.map { "\($0)" }
        XCTAssertEqual(commands, ["pause", "ping", "counters"])
    }

    func testPingIsAnsweredWhileASlowCommandIsPending() throws {
        let server = try TestServer()
        server.vmm.delay { if case .sendMigration = $0 { 2 } else { 0 } }
        let migration = try server.connect()
        try migration.send(RawHTTP.request("PUT", "vm.send-migration", body: #"{"destination_url":"unix:/tmp/m"}"#))
        XCTAssertTrue(server.vmm.waitForCommands(1))

        let start = Date()
        for _ in 0..<10 {
            XCTAssertEqual(try server.call("GET", "vmm.ping").status, 200)
        }
        XCTAssertEqual(try server.call("GET", "vm.info").status, 200)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "pings must not wait for the migration")

        XCTAssertEqual(try migration.readReply().status, 204)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 1.5)
    }

    func testTheAPINeedsNoThreadOfTheCooperativePool() throws {
        let server = try TestServer()
        // Occupy every thread of Swift's cooperative pool (as a misbehaving component might).
        let blockers = ProcessInfo.processInfo.activeProcessorCount * 2
        let blocked = DispatchSemaphore(value: 0)
        for _ in 0..<blockers {
            Task.detached { blocked.signal(); usleep(1_500_000) }
        }
        blocked.wait()
        let start = Date()
        XCTAssertEqual(try server.call("GET", "vmm.ping").status, 200)
        XCTAssertEqual(try server.call("PUT", "vm.pause").status, 204)
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "the blockers hold the pool for 1.5 s")
    }

    func testAHundredConcurrentConnectionsAreAllAnswered() throws {
        let server = try TestServer()
        // Every command takes 0.3 s: answered one after the other, they would take 30 s.
        server.vmm.delay { _ in 0.3 }
        let start = Date()
        let connections = try (0..<100).map { _ in try server.connect() }
        for (i, connection) in connections.enumerated() {
            try connection.send(i.isMultiple(of: 2) ? RawHTTP.request("GET", "vmm.ping") : RawHTTP.request("PUT", "vm.boot"))
        }
        let statuses = try connections.map { try $0.readReply().status }
        XCTAssertEqual(statuses, (0..<100).map { $0.isMultiple(of: 2) ? 200 : 204 })
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(server.vmm.commands.count, 100)
    }

    func testGarbageAndHangUpsDoNotAffectOtherClients() throws {
        let server = try TestServer()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let connection = try server.connect()
            try? connection.send((0..<512).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        // Half a head, half a body, a body promised and never sent; each client then vanishes.
        for partial in ["PUT /api/v1/vm.cre", "PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"cpus\"",
                        "GET /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\n", "PUT /api/v1/vm.create HTTP/1.1\r\nContent-Length: 100\r\n\r\n"] {
            let connection = try server.connect()
            try connection.send(partial)
            connection.hangUp()
        }
        XCTAssertEqual(try server.call("GET", "vmm.ping").status, 200)
    }

    func testAClientHangingUpWhileItsCommandRunsDoesNotDisturbTheServer() throws {
        let server = try TestServer()
        server.vmm.delay { if case .reboot = $0 { 0.3 } else { 0 } }
        let connection = try server.connect()
        try connection.send(RawHTTP.request("PUT", "vm.reboot"))
        XCTAssertTrue(server.vmm.waitForCommands(1))
        connection.hangUp()
        Thread.sleep(forTimeInterval: 0.5)  // the answer arrives for a closed connection
        XCTAssertEqual(try server.call("GET", "vmm.ping").status, 200)
    }

    func testOddMethodsAndVersionsAreAnsweredNotCrashedOn() throws {
        let server = try TestServer()
        let odd: [(String, Int)] = [
            ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("POST /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET /api/v1/vmm.ping HTTP/1.0\r\n\r\n", 200),
        ]
        for (request, status) in odd {
            let connection = try server.connect(timeout: 3)
            try connection.send(request)
            XCTAssertEqual(try connection.readReply().status, status, request)
        }
        XCTAssertEqual(try server.call("GET", "vmm.ping").status, 200)
    }

    func testHeadGetsTheStatusWithoutABody() throws {
        let server = try TestServer()
        let connection = try server.connect(timeout: 3)
        try connection.send("HEAD /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\n\r\n")
        try connection.send(RawHTTP.request("GET", "vmm.ping"))
        let head = try connection.readHead()
        XCTAssertEqual(head.status, 400)
        XCTAssertEqual(try connection.readReply().status, 200)
    }
}
