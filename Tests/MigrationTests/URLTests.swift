import Migration
import XCTest

final class URLTests: XCTestCase {
    func testParsesCHSpellings() throws {
        XCTAssertEqual(try MigrationURL("unix:/tmp/mig.sock"), .unix(path: "/tmp/mig.sock"))
        XCTAssertEqual(try MigrationURL("tcp:127.0.0.1:6000"), .tcp(host: "127.0.0.1", port: 6000))
        XCTAssertEqual(try MigrationURL("tcp:dest.example:1"), .tcp(host: "dest.example", port: 1))
        XCTAssertEqual(try MigrationURL("tcp:[::1]:6000"), .tcp(host: "::1", port: 6000))
        XCTAssertEqual(try MigrationURL("tcp:[fe80::1%eth0]:7").description, "tcp:[fe80::1%eth0]:7")
        XCTAssertEqual(try MigrationURL("tcp:0.0.0.0:6000").description, "tcp:0.0.0.0:6000")
    }

    func testRejectsWithAReason() {
        let cases: [(String, String)] = [
            ("unix:", "path is empty"),
            ("unix:/" + String(repeating: "x", count: 120), "at most 107"),
            ("tcp:host", "port is missing"),
            ("tcp:host:http", "not a port number"),
            ("tcp:host:70000", "not a port number"),
            ("tcp::6000", "host is empty"),
            ("tcp:::1:6000", "in brackets"),
            ("tcp:[::1:6000", "[addr]"),
            ("file:///tmp/x", "unknown scheme"),
            ("", "unknown scheme"),
        ]
        for (text, reason) in cases {
            XCTAssertThrowsError(try MigrationURL(text), text) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
                XCTAssertTrue("\(error)".contains("tcp:<host>:<port>"), "says what is expected: \(error)")
            }
        }
    }
}
