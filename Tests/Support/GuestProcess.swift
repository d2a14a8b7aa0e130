import Foundation

/// Where the repository, the built products and the checkguest live, for tests and benchmarks.
public enum Paths {
    /// The package root (found from this source file's location: Tests/Support/…).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The checkguest ELF, built by `make -C Tests/Guest` (scripts/setup does it).
    public static var checkguest: URL { root.appendingPathComponent("Tests/Guest/build/checkguest.elf") }

    /// A built executable of this package: the one built with the running tests (next to the test bundle,
    /// whatever `--scratch-path` built it), else the debug build, else release.
    public static func product(_ name: String) -> URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let candidates = [bundle.deletingLastPathComponent().appendingPathComponent(name)]
            + ["debug", "release"].map { root.appendingPathComponent(".build/\($0)/\(name)") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[1]
    }

    /// Whether /dev/kvm can be opened read-write here.
    public static var kvmUsable: Bool {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        if fd < 0 { return false }
        close(fd)
        return true
    }

    public static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}

/// Why waiting on a guest failed; the message carries the console tail so a failing test explains itself.
public struct GuestWaitError: Error, CustomStringConvertible {
    public let what: String
    public let output: String
    public init(what: String, output: String) {
        self.what = what
        self.output = output
    }
    public var description: String {
        let tail = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
        return "\(what)\n--- last console lines ---\n\(tail)"
    }
}

/// A child process (our VMM or QEMU) whose console we read line by line and can write to.
///
/// Output (stdout and stderr merged) is collected on a background thread; tests wait for markers with a
/// deadline instead of sleeping.
public final class GuestProcess: @unchecked Sendable {
    public let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lock = NSCondition()
    /// Bytes after the last newline (split on bytes: Swift treats "\r\n" as one Character).
    private var buffer: [UInt8] = []
    private var lines: [String] = []
    private var eof = false
    /// Index of the first line not yet consumed by `waitFor`.
    private var cursor = 0

    public init(executable: String, arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        let handle = output.fileHandleForReading
        handle.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            self.lock.lock()
            if data.isEmpty {
                self.eof = true
                if !self.buffer.isEmpty { self.lines.append(String(decoding: self.buffer, as: UTF8.self)) }
                self.buffer = []
                h.readabilityHandler = nil
            } else {
                self.buffer.append(contentsOf: data)
                var start = 0
                while let nl = self.buffer[start...].firstIndex(of: 0x0A) {
                    var end = nl
                    if end > start && self.buffer[end - 1] == 0x0D { end -= 1 }
                    self.lines.append(String(decoding: self.buffer[start..<end], as: UTF8.self))
                    start = nl + 1
                }
                self.buffer.removeFirst(start)
            }
            self.lock.broadcast()
            self.lock.unlock()
        }
        try process.run()
    }

    /// Everything printed so far.
    public var allOutput: String {
        lock.lock(); defer { lock.unlock() }
        return (lines + (buffer.isEmpty ? [] : [String(decoding: buffer, as: UTF8.self)])).joined(separator: "\n")
    }

    public var allLines: [String] {
        lock.lock(); defer { lock.unlock() }
        return lines
    }

    /// Waits for the next line (after the previous match) that matches `pattern`; returns its capture groups
    /// (element 0 is the whole line). Throws with the console tail on timeout or exit.
    @discardableResult
    public func waitFor(_ pattern: String, timeout: TimeInterval = 30) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while true {
            while cursor < lines.count {
                let line = lines[cursor]
                cursor += 1
                let range = NSRange(line.startIndex..., in: line)
                if let m = regex.firstMatch(in: line, range: range) {
                    return (0..<m.numberOfRanges).map { i in
                        Range(m.range(at: i), in: line).map { String(line[$0]) } ?? ""
                    }
                }
            }
            if eof {
                let out = (lines + [String(decoding: buffer, as: UTF8.self)]).joined(separator: "\n")
                throw GuestWaitError(what: "process ended before a line matched /\(pattern)/", output: out)
            }
            if !lock.wait(until: deadline) {
                let out = (lines + [String(decoding: buffer, as: UTF8.self)]).joined(separator: "\n")
                throw GuestWaitError(what: "timed out after \(timeout)s waiting for /\(pattern)/", output: out)
            }
        }
    }

    /// Lines printed from now on only: skips what has been printed so far.
    public func skipExisting() {
        lock.lock(); cursor = lines.count; lock.unlock()
    }

    public func send(_ text: String) {
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    /// Waits for the process to exit by itself; returns its status, or nil on timeout.
    public func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(10_000)
        }
        // The output pipe may still hold the last lines: wait for its end (children could keep it open).
        lock.lock()
        let drained = Date().addingTimeInterval(2)
        while !eof && lock.wait(until: drained) {}
        lock.unlock()
        return process.terminationStatus
    }

    /// Stops the process (SIGTERM, then SIGKILL after `grace` seconds).
    public func stop(grace: TimeInterval = 3) {
        guard process.isRunning else { return }
        process.terminate()
        if waitForExit(timeout: grace) == nil {
            kill(process.processIdentifier, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    deinit { stop(grace: 1) }
}
