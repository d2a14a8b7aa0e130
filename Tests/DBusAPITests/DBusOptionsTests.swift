import DBusAPI
import XCTest

/// The three CLI flags: when the D-Bus API starts, the default object path, and names refused before
/// libdbus sees them (it aborts the process on invalid ones).
final class DBusOptionsTests: XCTestCase {
    func testNoServiceNameMeansNoDBusAPI() throws {
        XCTAssertNil(try DBusOptions.commandLine(serviceName: nil, objectPath: nil, systemBus: false))
        XCTAssertNil(try DBusOptions.commandLine(serviceName: nil, objectPath: nil, systemBus: true))
    }

    func testServiceNameAloneUsesTheDefaultPathOnTheSessionBus() throws {
        let options = try XCTUnwrap(try DBusOptions.commandLine(serviceName: "org.cloudhypervisor.VM1", objectPath: nil, systemBus: false))
        XCTAssertEqual(options.serviceName, "org.cloudhypervisor.VM1")
        XCTAssertEqual(options.objectPath, "/org/cloudhypervisor/DBusApi1")
        XCTAssertEqual(options.bus, .session)
        let system = try XCTUnwrap(try DBusOptions.commandLine(serviceName: "a.b", objectPath: "/a/b", systemBus: true))
        XCTAssertEqual(system.objectPath, "/a/b")
        XCTAssertEqual(system.bus, .system)
    }

    func testObjectPathWithoutServiceNameIsRefused() {
        XCTAssertThrowsError(try DBusOptions.commandLine(serviceName: nil, objectPath: "/a", systemBus: false)) { error in
            XCTAssertEqual(error as? DBusServiceError, .objectPathWithoutServiceName(path: "/a"))
            XCTAssertTrue("\(error)".contains("--dbus-service-name"), "\(error)")
        }
    }

    func testInvalidNamesAndPathsAreRefusedWithTheReason() {
        for name in ["", "single", "org..x", "1org.x", ":1.42", "org.x/y"] {
            XCTAssertThrowsError(try DBusOptions(serviceName: name), name) { error in
                guard case .invalidServiceName? = error as? DBusServiceError else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue("\(error)".contains("--dbus-service-name"), "\(error)")
            }
        }
        for path in ["", "relative", "/trailing/", "/a//b", "/a-b"] {
            XCTAssertThrowsError(try DBusOptions(serviceName: "a.b", objectPath: path), path) { error in
                guard case .invalidObjectPath? = error as? DBusServiceError else { return XCTFail("\(path): \(error)") }
                XCTAssertTrue("\(error)".contains("--dbus-object-path"), "\(error)")
            }
        }
        XCTAssertNoThrow(try DBusOptions(serviceName: "org.cloud-hypervisor._x1", objectPath: "/"))
    }
}
