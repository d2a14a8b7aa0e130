import Foundation
import XCTest

/// Requests CH refuses, refused the same way: status, and a JSON array of strings as the body.
final class ErrorTests: XCTestCase {
    func testMalformedJSONIs400FailedToDeserialize() throws {
        let server = try TestServer()
        let reply = try server.call("PUT", "vm.create", body: #"{"cpus": {"boot_vcpus": 2,"#)
        XCTAssertEqual(reply.status, 400)
        let chain = try XCTUnwrap(reply.errorChain)
        XCTAssertEqual(chain, ["Failed to deserialize JSON", "Unexpected end of file during JSON parse."])
        XCTAssertTrue(server.vmm.commands.isEmpty, "nothing reaches the VMM")
    }

    func testDeserializeErrorsNameTheField() throws {
        let server = try TestServer()
        let missing = try server.call("PUT", "vm.create", body: #"{"memory": {"shared": true}}"#)
        XCTAssertEqual(missing.status, 400)
        XCTAssertEqual(missing.errorChain?.first, "Failed to deserialize JSON")
        XCTAssertEqual(missing.errorChain?.last, "missing field `size` at `memory`")

        let wrongType = try server.call("PUT", "vm.create", body: #"{"cpus": {"boot_vcpus": "two", "max_vcpus": 2}}"#)
        XCTAssertEqual(wrongType.status, 400)
        let detail = try XCTUnwrap(wrongType.errorChain?.last)
        XCTAssertTrue(detail.contains("`cpus.boot_vcpus`"), detail)

        let badEnum = try server.call("PUT", "vm.create", body: #"{"serial": {"mode": "Loud"}}"#)
        XCTAssertEqual(badEnum.status, 400)
        XCTAssertTrue(badEnum.errorChain?.last?.contains("`serial.mode`") == true, badEnum.text)

        let negative = try server.call("PUT", "vm.create", body: #"{"cpus": {"boot_vcpus": -1, "max_vcpus": 2}}"#)
        XCTAssertEqual(negative.errorChain, ["Failed to deserialize JSON",
                                             "a number does not fit its field (negative, fractional or too large)"])

        let notAnObject = try server.call("PUT", "vm.resize-disk", body: "[1]")
        XCTAssertEqual(notAnObject.status, 400)
        XCTAssertEqual(notAnObject.errorChain?.first, "Failed to deserialize JSON")
    }

    func testUnknownFieldsAreIgnored() throws {
        let server = try TestServer()
        let reply = try server.call("PUT", "vm.remove-device", body: #"{"id":"_disk0","future_field":[1,2]}"#)
        XCTAssertEqual(reply.status, 204)
    }

    func testBodyOnABodylessCommandIs400() throws {
        let server = try TestServer()
        let reply = try server.call("PUT", "vm.boot", body: #"{"now": true}"#)
        XCTAssertEqual(reply.status, 400)
        XCTAssertEqual(reply.errorChain, ["Bad Request", "vm.boot takes no request body"])
        XCTAssertTrue(server.vmm.commands.isEmpty)
    }

    func testAnEmptyBodyCountsAsNoBody() throws {
        // `curl -X PUT -d ''` sends Content-Length: 0; CH treats that as no body.
        let server = try TestServer()
        let reply = try server.call("PUT", "vm.boot", body: "")
        XCTAssertEqual(reply.status, 204)
    }

    func testMissingBodyIs400() throws {
        let server = try TestServer()
        let reply = try server.call("PUT", "vm.create")
        XCTAssertEqual(reply.status, 400)
        XCTAssertEqual(reply.errorChain, ["Bad Request", "vm.create needs a JSON request body"])
        XCTAssertTrue(server.vmm.commands.isEmpty)
    }

    func testUnknownRouteIs404() throws {
        let server = try TestServer()
        for path in ["/api/v1/vm.teleport", "/api/v2/vmm.ping", "/", "/api/v1/"] {
            let connection = try server.connect()
            try connection.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let reply = try connection.readReply()
            XCTAssertEqual(reply.status, 404, path)
            XCTAssertEqual(reply.errorChain, ["Not Found", "No API endpoint at \(path)"])
        }
    }

    func testWrongMethodIs400NeverA405() throws {
        let server = try TestServer()
        let get = try server.call("GET", "vm.boot")
        XCTAssertEqual(get.status, 400)
        XCTAssertEqual(get.errorChain, ["Bad Request", "vm.boot takes PUT, not GET"])
        XCTAssertEqual(try server.call("PUT", "vm.info").status, 400)
        XCTAssertEqual(try server.call("POST", "vm.create", body: "{}").status, 400)
        XCTAssertEqual(try server.call("DELETE", "vm.delete").status, 400)
        XCTAssertTrue(server.vmm.commands.isEmpty)
    }

    func testBodiesOnGetEndpointsAreIgnoredAsCHDoes() throws {
        let server = try TestServer()
        XCTAssertEqual(try server.call("GET", "vm.info", body: "not json").status, 200)
    }

    func testOversizedBodyIsRefusedFromItsContentLengthWithoutReadingIt() throws {
        let server = try TestServer()
        let connection = try server.connect(timeout: 5)
        let start = Date()
        // Only the head: the server must answer without waiting for 5 MiB.
        try connection.send("PUT /api/v1/vm.create HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                            + "Content-Length: \(5 << 20)\r\n\r\n{\"cpus\":")
        let reply = try connection.readReply()
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        XCTAssertEqual(reply.status, 400)
        XCTAssertEqual(reply.errorChain, ["Bad Request",
                                          "Request payload with size 5242880 is larger than the limit of 4194304 allowed by server."])
        XCTAssertEqual(reply.headers["connection"], "close")
        XCTAssertTrue(connection.isClosedByServer())
        XCTAssertTrue(server.vmm.commands.isEmpty)
        XCTAssertEqual(try server.call("GET", "vmm.ping").status, 200)
    }

    func testOversizedBodySentWholeIsRefusedQuickly() throws {
        let server = try TestServer()
        let connection = try server.connect(timeout: 5)
        let start = Date()
        let body = "{\"x\":\"" + String(repeating: "a", count: 5 << 20) + "\"}"
        // The server may hang up before all of it is sent: that is the point.
        try? connection.send(RawHTTP.request("PUT", "vm.create", body: body))
        let reply = try connection.readReply()
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        XCTAssertEqual(reply.status, 400)
        XCTAssertTrue(server.vmm.commands.isEmpty)
    }

    func testOversizedChunkedBodyIsRefusedWhileArriving() throws {
        let server = try TestServer()
        let connection = try server.connect(timeout: 5)
        try connection.send("PUT /api/v1/vm.create HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(repeating: "a", count: 1 << 20)
        var reply: RawHTTP.Reply?
        for _ in 0..<5 {
            do {
                try connection.send(String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n")
            } catch {
                break  // refused and closed
            }
        }
        reply = try connection.readReply()
        XCTAssertEqual(reply?.status, 400)
        XCTAssertEqual(reply?.errorChain, ["Bad Request",
                                           "Request payload is larger than the limit of 4194304 allowed by server."])
        XCTAssertTrue(server.vmm.commands.isEmpty)
    }

    func testABodyOfExactlyTheLimitIsAccepted() throws {
        let server = try TestServer()
        let padding = (4 << 20) - #"{"id":"_disk0","pad":""}"#.utf8.count
        let body = #"{"id":"_disk0","pad":""# + String(repeating: "p", count: padding) + #""}"#
        XCTAssertEqual(body.utf8.count, 4 << 20)
        XCTAssertEqual(try server.call("PUT", "vm.remove-device", body: body).status, 204)
    }

    func testGarbageIs400AndClosesOnlyThatConnection() throws {
        let server = try TestServer()
        let idle = try server.connect()
        let connection = try server.connect()
        try connection.send([0x16, 0x03, 0x01, 0x00, 0xff] + Array("\r\n\r\n".utf8))
        let reply = try connection.readReply()
        XCTAssertEqual(reply.status, 400)
        XCTAssertEqual(reply.errorChain?.first, "Bad Request")
        XCTAssertTrue(connection.isClosedByServer())
        XCTAssertEqual(try idle.call("GET", "vmm.ping").status, 200)
    }
}
