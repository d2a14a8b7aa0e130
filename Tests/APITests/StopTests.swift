import API
import Foundation
import VMM
import XCTest

/// `stop()` as the VMM's main calls it when the VMM exits (e.g. right after answering vmm.shutdown).
final class StopTests: XCTestCase {
    func testAnOwedResponseIsDeliveredBeforeStopCloses() throws {
        let server = try TestServer()
        server.vmm.delay { if case .shutdownVmm = $0 { 0.3 } else { 0 } }
        let idle = try server.connect()
        let connection = try server.connect()
        try connection.send(RawHTTP.request("PUT", "vmm.shutdown"))
        XCTAssertTrue(server.vmm.waitForCommands(1))
        server.server.stop()
        let reply = try connection.readReply()
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.headers["connection"], "close")
        XCTAssertTrue(connection.isClosedByServer())
        XCTAssertTrue(idle.isClosedByServer(), "idle connections are closed")
    }

    func testACommandThatNeverReturnsDoesNotHoldStopForever() throws {
        let server = try TestServer()
        server.vmm.delay { if case .receiveMigration = $0 { 5 } else { 0 } }
        let connection = try server.connect()
        try connection.send(RawHTTP.request("PUT", "vm.receive-migration", body: #"{"receiver_url":"unix:/tmp/m"}"#))
        XCTAssertTrue(server.vmm.waitForCommands(1))
        let start = Date()
        server.server.stop()
        XCTAssertLessThan(Date().timeIntervalSince(start), 3.5)
        XCTAssertTrue(connection.isClosedByServer())
    }
}
