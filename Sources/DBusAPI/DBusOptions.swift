import CDBus

/// Where and under which name the D-Bus API is served: Cloud Hypervisor's `--dbus-service-name`,
/// `--dbus-object-path` and `--dbus-system-bus`. Names are validated here, with libdbus's own rules,
/// because libdbus aborts the process when handed an invalid one.
public struct DBusOptions: Sendable, Equatable {
    public enum Bus: Sendable, Equatable, CustomStringConvertible {
        case session
        case system
        /// A bus by address (`unix:path=…`), such as a private `dbus-daemon` a test starts.
        case address(String)

        public var description: String {
            switch self {
            case .session: "session bus"
            case .system: "system bus"
            case let .address(address): "bus at \(address)"
            }
        }
    }

    /// CH has no default and insists on both flags; a path derived from the interface name spares users
    /// the second flag, and anything CH accepts still works the same.
    public static let defaultObjectPath = "/org/cloudhypervisor/DBusApi1"

    public let serviceName: String
    public let objectPath: String
    public let bus: Bus

    public init(serviceName: String, objectPath: String = defaultObjectPath, bus: Bus = .session) throws(DBusServiceError) {
        try Self.validate(serviceName: serviceName)
        try Self.validate(objectPath: objectPath)
        self.serviceName = serviceName
        self.objectPath = objectPath
        self.bus = bus
    }

    /// The options the command line asks for, or nil when it does not ask for the D-Bus API (no service
    /// name). An object path alone is refused, as CH does.
    public static func commandLine(serviceName: String?, objectPath: String?, systemBus: Bool) throws(DBusServiceError) -> DBusOptions? {
        guard let serviceName else {
            if let objectPath { throw .objectPathWithoutServiceName(path: objectPath) }
            return nil
        }
        return try DBusOptions(serviceName: serviceName, objectPath: objectPath ?? defaultObjectPath,
                               bus: systemBus ? .system : .session)
    }

    private static func validate(serviceName: String) throws(DBusServiceError) {
        if serviceName.hasPrefix(":") {
            throw .invalidServiceName(serviceName, reason: "names starting with ':' are unique connection names, which only the bus assigns")
        }
        if let reason = LibDBusError.capture({ dbus_validate_bus_name(serviceName, $0) }) {
            throw .invalidServiceName(serviceName, reason: reason)
        }
    }

    private static func validate(objectPath: String) throws(DBusServiceError) {
        if let reason = LibDBusError.capture({ dbus_validate_path(objectPath, $0) }) {
            throw .invalidObjectPath(objectPath, reason: reason)
        }
    }
}
