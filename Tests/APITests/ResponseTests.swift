import Config
import VMM
import XCTest

/// Success statuses, bodies and headers exactly as Cloud Hypervisor sends them.
final class ResponseTests: XCTestCase {
    func testPingAnswers200WithTheVersionObject() throws {
        let server = try TestServer()
        let reply = try server.call("GET", "vmm.ping")
        XCTAssertEqual(reply.status, 200)
        let object = try XCTUnwrap(reply.object)
        XCTAssertEqual(object["version"] as? String, "v0.1.0")
        XCTAssertEqual(object["build_version"] as? String, "v0.1.0")
        XCTAssertEqual(object["pid"] as? Int, 42)
        XCTAssertEqual(object["features"] as? [String], [])
    }

    func testEveryResponseIsJSONFromTheCloudHypervisorAPI() throws {
        let server = try TestServer()
        let connection = try server.connect()
        let replies = [
            try connection.call("GET", "vmm.ping"),
            try connection.call("PUT", "vm.boot"),
            try connection.call("PUT", "vm.boot", body: "{}"),
            try connection.call("GET", "nope"),
        ]
        XCTAssertEqual(replies.map(\.status), [200, 204, 400, 404])
        for reply in replies {
            XCTAssertEqual(reply.headers["content-type"], "application/json")
            XCTAssertEqual(reply.headers["server"], "Cloud Hypervisor API")
        }
    }

    func testCommandsWithoutDataAnswer204WithNoBody() throws {
        let server = try TestServer()
        for endpoint in ["vm.boot", "vm.pause", "vm.resume", "vm.shutdown", "vm.reboot", "vm.power-button", "vm.nmi",
                         "vm.delete"] {
            let reply = try server.call("PUT", endpoint)
            XCTAssertEqual(reply.status, 204, endpoint)
            XCTAssertEqual(reply.body, [], endpoint)
            XCTAssertNil(reply.headers["content-length"], "204 carries no Content-Length")
        }
        XCTAssertEqual(try server.call("PUT", "vm.create", body: "{}").status, 204)
    }

    func testVmmShutdownAnswers200WithAnEmptyBody() throws {
        let server = try TestServer()
        let reply = try server.call("PUT", "vmm.shutdown")
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.headers["content-length"], "0")
        XCTAssertEqual(reply.body, [])
    }

    func testInfoAndCountersAnswer200WithTheirObjects() throws {
        let server = try TestServer()
        let info = try server.call("GET", "vm.info")
        XCTAssertEqual(info.status, 200)
        XCTAssertEqual(info.object?["state"] as? String, "Created")
        XCTAssertEqual(info.object?["memory_actual_size"] as? Int, 512 << 20)
        let config = try XCTUnwrap(info.object?["config"] as? [String: Any])
        XCTAssertEqual((config["rng"] as? [String: Any])?["src"] as? String, "/dev/urandom", "slashes are not escaped")
        XCTAssertTrue(info.text.contains("\"/dev/urandom\""))

        let counters = try server.call("GET", "vm.counters")
        XCTAssertEqual(counters.status, 200)
        XCTAssertEqual((counters.object?["_disk0"] as? [String: Any])?["read_bytes"] as? Int, 4096)
    }

    func testHotPlugAnswers200WithIdAndBdfAndColdPlug204() throws {
        let server = try TestServer()
        server.vmm.answer { _ in .success(.deviceAdded(PciDeviceInfo(id: "_disk1", bdf: "0000:00:05.0"))) }
        let hot = try server.call("PUT", "vm.add-disk", body: #"{"path":"/img.raw"}"#)
        XCTAssertEqual(hot.status, 200)
        XCTAssertEqual(hot.object?["id"] as? String, "_disk1")
        XCTAssertEqual(hot.object?["bdf"] as? String, "0000:00:05.0")

        server.vmm.answer { _ in .success(.deviceAdded(nil)) }
        let cold = try server.call("PUT", "vm.add-disk", body: #"{"path":"/img.raw"}"#)
        XCTAssertEqual(cold.status, 204)
        XCTAssertEqual(cold.body, [])
    }

    func testVmmErrorsMapToCloudHypervisorsStatusAndChain() throws {
        let server = try TestServer()
        let cases: [(VmmError, Int)] = [
            (VmmError(.badRequest, ["Error validating the VM configuration", "Invalid number of vCPUs"]), 400),
            (.vmNotCreated("The VM could not be booted"), 404),
            (VmmError(.conflict, ["The disk could not be added", "Identifier _disk0 is not unique"]), 409),
            (.invalidTransition("The VM could not be paused", from: .Paused, to: .Paused), 500),
            (VmmError(.tooManyRequests, ["The VM could not be resized", "a vCPU removal is still pending"]), 429),
            (.notSupported("The VM could not be snapshotted", "Snapshot"), 500),
        ]
        for (error, status) in cases {
            server.vmm.answer { _ in .failure(error) }
            let reply = try server.call("PUT", "vm.pause")
            XCTAssertEqual(reply.status, status, "\(error)")
            XCTAssertEqual(reply.errorChain, ["Error from API"] + error.chain)
        }
    }

    func testNotYetSupportedEndpointsAnswerCHsErrorShape() throws {
        let server = try TestServer()
        server.vmm.answer { _ in .failure(.notSupported("The VM could not be snapshotted", "Snapshot")) }
        let reply = try server.call("PUT", "vm.snapshot", body: #"{"destination_url":"file:///tmp/snap"}"#)
        XCTAssertEqual(reply.status, 500)
        XCTAssertEqual(reply.errorChain, ["Error from API", "The VM could not be snapshotted",
                                          "Snapshot is not supported by this VMM yet"])
    }
}
