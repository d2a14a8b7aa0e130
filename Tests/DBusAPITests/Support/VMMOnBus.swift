import Foundation
import TestSupport

extension GuestProcess {
    /// Our `cloud-hypervisor` serving the D-Bus API as `BusClient.service` on `bus` (as its session bus)
    /// and REST on `socket`.
    static func vmm(on bus: PrivateBus, socket: String, extra: [String] = []) throws -> GuestProcess {
        try GuestProcess(executable: VMMBinary.path,
                         arguments: ["--api-socket", "path=\(socket)", "--dbus-service-name", BusClient.service] + extra,
                         environment: ProcessInfo.processInfo.environment.merging(["DBUS_SESSION_BUS_ADDRESS": bus.address]) { $1 })
    }
}

enum VMMBinary {
    /// The `cloud-hypervisor` built with these tests: next to the test bundle (whatever `--scratch-path`
    /// built it), else where `Paths.product` finds one.
    static var path: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let sibling = bundle.deletingLastPathComponent().appendingPathComponent("cloud-hypervisor").path
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : Paths.product("cloud-hypervisor").path
    }
}
