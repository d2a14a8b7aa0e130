import API
import Config
import Glibc
import XCTest

/// `--api-socket` as Cloud Hypervisor parses it.
final class APISocketTests: XCTestCase {
    func testPathFdAndBarePath() throws {
        XCTAssertEqual(try APISocket.parse("path=/tmp/ch.sock"), .path("/tmp/ch.sock"))
        XCTAssertEqual(try APISocket.parse("fd=3"), .fd(3))
        XCTAssertEqual(try APISocket.parse("/tmp/ch.sock"), .path("/tmp/ch.sock"))
    }

    func testAnythingThatIsNotOptionsIsAPathAsInCH() throws {
        XCTAssertEqual(try APISocket.parse("/tmp/a,b.sock"), .path("/tmp/a,b.sock"))
        XCTAssertEqual(try APISocket.parse("relative.sock"), .path("relative.sock"))
    }

    func testFdWinsOverPathAsInCH() throws {
        XCTAssertEqual(try APISocket.parse("path=/tmp/x,fd=7"), .fd(7))
    }

    func testBadValuesAreRefused() {
        XCTAssertThrowsError(try APISocket.parse("fd=three"))
        XCTAssertThrowsError(try APISocket.parse("fd=-1"))
        XCTAssertThrowsError(try APISocket.parse("path="))
        XCTAssertThrowsError(try APISocket.parse(""))
    }

    func testDefaultPathIsCHs() {
        XCTAssertEqual(APISocket.default, .path("/run/user/\(getuid())/cloud-hypervisor.\(getpid())"))
    }
}
