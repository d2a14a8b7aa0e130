import Foundation

/// A host tool run to completion with stdout and stderr in one stream, as a person at a terminal would see
/// them (the order of an error and the lines before it matters in a failure message).
public enum HostCommand {
    /// Runs `executable` with `arguments` (in `directory` when given) and waits for it. Throws only when it
    /// cannot be started; a failing tool is a status for the caller to judge.
    public static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws
        -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read before waiting: a full pipe would block the child.
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
