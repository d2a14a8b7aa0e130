import Foundation

/// A command-line client (busctl, gdbus) run to completion, with its exit status and both outputs.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// A started command whose result is collected later, for calls that must overlap.
final class RunningCommand {
    private let process = Process()
    private let stdout = Pipe()
    private let stderr = Pipe()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    func finish() -> CommandResult {
        // Read before waiting: a full pipe would block the child.
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                             stderr: String(decoding: err, as: UTF8.self))
    }
}
