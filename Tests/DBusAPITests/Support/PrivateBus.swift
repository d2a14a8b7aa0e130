import Foundation
import TestSupport
import XCTest

/// A private `dbus-daemon --session` listening in a scratch directory, so tests never touch the user's
/// session bus and a VMM left over from one test cannot hold a name in the next.
final class PrivateBus {
    let address: String
    private let daemon: Process
    private let directory: ScratchDirectory

    init(file: StaticString = #filePath, line: UInt = #line) throws {
        let executable = try Require.tool("dbus-daemon", file: file, line: line)
        directory = try ScratchDirectory("bus")
        daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: executable)
        daemon.arguments = ["--session", "--nofork", "--print-address=1",
                            "--address=unix:path=\(directory.file("bus"))"]
        let output = Pipe()
        daemon.standardOutput = output
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        // The daemon prints its address once it listens.
        var printed = Data()
        while !printed.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            printed.append(chunk)
        }
        address = String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !address.isEmpty else {
            throw TestFailure("dbus-daemon did not print its address")
        }
    }

    /// Ends the daemon: every connection to it is closed.
    func stop() {
        guard daemon.isRunning else { return }
        daemon.terminate()
        daemon.waitUntilExit()
    }

    deinit { stop() }
}
