import Foundation
import TestSupport
import XCTest

/// The host-to-host scenario: `migration/netns-migrate.sh` moves the checkguest over TCP between two network
/// namespaces joined by a veth pair, with the VMM built for these tests; the verdict is what the guest printed
/// on the destination's console (relayed by the script) and that the namespaces are gone afterwards.
final class NetnsMigrationTests: XCTestCase {
    func testMigrationOverTCPBetweenTwoNetworkNamespaces() throws {
        try Require.kvm()
        try Require.checkguest()
        _ = try Require.tool("curl")
        _ = try Require.tool("ip")
        guard getuid() == 0 else { throw XCTSkip("network namespaces need root") }

        let script = Process()
        script.executableURL = Paths.root.appendingPathComponent("migration/netns-migrate.sh")
        script.arguments = ["-b", LivePeers.vmmPath]
        let output = Pipe()
        script.standardOutput = output
        script.standardError = output
        try script.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        script.waitUntilExit()
        XCTAssertEqual(script.terminationStatus, 0, text)

        XCTAssertNotNil(text.range(of: #"(?m)^source in netns chmig-src-\d+ \(10\.[\d.]+\), destination in netns"#,
                                   options: .regularExpression), text)
        XCTAssertNotNil(text.range(of: #"(?m)^destination: CHECK ok pages=16384$"#, options: .regularExpression), text)
        XCTAssertNotNil(text.range(of: #"(?m)^destination: MEMCHECK .*\bbad=0\b"#, options: .regularExpression), text)
        XCTAssertTrue(text.contains(#""destination_url": "tcp:10."#), text)
        let ticks = try XCTUnwrap(text.firstMatch(of: /last source TICK: TICK (\d+), first destination TICK: TICK (\d+)/), text)
        XCTAssertEqual(Int(ticks.2), Int(ticks.1)! + 1, "TICKs continue where the source stopped")
        let summary = try XCTUnwrap(text.firstMatch(of: /total (\d+) ms, downtime ([\d.]+) ms/), text)
        print("netns TCP migration: total \(summary.1) ms, downtime \(summary.2) ms")
        XCTAssertFalse(try namespaces().contains { $0.hasPrefix("chmig-") && $0.hasSuffix("-\(script.processIdentifier)") },
                       "the script removes its namespaces")
    }

    private func namespaces() throws -> [String] {
        try TapDevice.ip(["netns", "list"]).split(separator: "\n").map { String($0.split(separator: " ")[0]) }
    }
}
