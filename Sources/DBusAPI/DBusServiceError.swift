import Glibc

/// Why the D-Bus API could not start. Each message names what was asked for and what to do about it,
/// since it is printed to the user as the reason the VMM refused to start.
public enum DBusServiceError: Error, Equatable, CustomStringConvertible {
    /// `--dbus-object-path` without `--dbus-service-name` (CH refuses it too).
    case objectPathWithoutServiceName(path: String)
    case invalidServiceName(String, reason: String)
    case invalidObjectPath(String, reason: String)
    /// No bus to connect to (e.g. no session bus: `DBUS_SESSION_BUS_ADDRESS` unset), or it refused us.
    case cannotConnect(bus: DBusOptions.Bus, reason: String)
    /// Another connection owns the name; we do not queue for it or take it over.
    case nameTaken(name: String, bus: DBusOptions.Bus)
    /// The bus refused the name (on the system bus: no policy allows this user to own it).
    case cannotOwnName(name: String, bus: DBusOptions.Bus, reason: String)
    case cannotRegisterObject(path: String, reason: String)
    /// The D-Bus thread's wake-up pipe could not be created (out of file descriptors?).
    case cannotCreateWakeupPipe(errno: Int32)

    public var description: String {
        switch self {
        case let .objectPathWithoutServiceName(path):
            return "--dbus-object-path \(path) needs --dbus-service-name: give the name the D-Bus API should own"
        case let .invalidServiceName(name, reason):
            return "invalid --dbus-service-name \(name): \(reason) (a well-known name such as org.cloudhypervisor.VM1)"
        case let .invalidObjectPath(path, reason):
            return "invalid --dbus-object-path \(path): \(reason) (an absolute path such as \(DBusOptions.defaultObjectPath))"
        case let .cannotConnect(bus, reason):
            let hint = switch bus {
            case .session: "is a session bus running? DBUS_SESSION_BUS_ADDRESS names it (`dbus-daemon --session --print-address` prints one); or use --dbus-system-bus"
            case .system: "is the system bus (dbus-daemon --system) running?"
            case .address: "is a dbus-daemon listening there?"
            }
            return "cannot connect to the \(bus) for the D-Bus API: \(reason); \(hint)"
        case let .nameTaken(name, bus):
            return "the name \(name) is already owned on the \(bus) (another cloud-hypervisor?): choose another --dbus-service-name or stop its owner"
        case let .cannotOwnName(name, bus, reason):
            return "the \(bus) refused the name \(name): \(reason)"
                + (bus == .system ? "; the system bus needs a policy file in /etc/dbus-1/system.d/ allowing this user to own it" : "")
        case let .cannotRegisterObject(path, reason):
            return "cannot serve the D-Bus API at \(path): \(reason)"
        case let .cannotCreateWakeupPipe(code):
            return "cannot create the D-Bus API thread's wake-up pipe: \(String(cString: strerror(code)))"
        }
    }
}
