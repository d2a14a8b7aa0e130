import Foundation
import XCTest

/// Preconditions of end-to-end tests. Under CI (`CI` set) a missing prerequisite fails the test:
/// a skipped KVM test would hide that nothing was tested.
public enum Require {
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    static func missing(_ what: String, file: StaticString, line: UInt) throws -> Never {
        if inCI {
            XCTFail("\(what) (required under CI)", file: file, line: line)
            throw XCTSkip("failed: \(what)")
        }
        throw XCTSkip(what)
    }

    public static func kvm(file: StaticString = #filePath, line: UInt = #line) throws {
        if !Paths.kvmUsable { try missing("/dev/kvm is not usable", file: file, line: line) }
    }

    public static func checkguest(file: StaticString = #filePath, line: UInt = #line) throws {
        if !FileManager.default.fileExists(atPath: Paths.checkguest.path) {
            try missing("checkguest not built (make -C Tests/Guest)", file: file, line: line)
        }
    }

    public static func tool(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        guard let path = Paths.which(name) else { try missing("\(name) is not installed", file: file, line: line) }
        return path
    }
}

extension GuestProcess {
    /// Our `cloud-hypervisor` with the given arguments.
    public static func vmm(_ arguments: [String]) throws -> GuestProcess {
        try GuestProcess(executable: Paths.product("cloud-hypervisor").path, arguments: arguments)
    }

    /// Our VMM booting the checkguest with its serial console on stdio.
    public static func checkguest(cpus: Int = 1, memory: String = "256M", cmdline: String,
                                  extra: [String] = []) throws -> GuestProcess {
        try vmm(["--kernel", Paths.checkguest.path, "--cpus", "boot=\(cpus)", "--memory", "size=\(memory)",
                 "--serial", "tty", "--console", "off", "--cmdline", cmdline] + extra)
    }
}

extension Require {
    /// Root, `ip` and /dev/net/tun, to create TAP interfaces (`TapDevice`).
    public static func tap(file: StaticString = #filePath, line: UInt = #line) throws {
        if let why = TapDevice.unavailableReason { try missing(why, file: file, line: line) }
    }
}
