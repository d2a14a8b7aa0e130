import Foundation
import TestSupport

extension GuestProcess {
    /// Our `cloud-hypervisor` serving the D-Bus API as `BusClient.service` on `bus` (as its session bus)
    /// and REST on `socket`.
    static func vmm(on bus: PrivateBus, socket: String, extra: [String] = []) throws -> GuestProcess {
        try GuestProcess(executable: Paths.product("cloud-hypervisor").path,
                         arguments: ["--api-socket", "path=\(socket)", "--dbus-service-name", BusClient.service] + extra,
                         environment: ProcessInfo.processInfo.environment.merging(["DBUS_SESSION_BUS_ADDRESS": bus.address]) { $1 })
    }
}

