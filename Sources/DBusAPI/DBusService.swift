import CDBus
import Logging
import VMM

/// Cloud Hypervisor's D-Bus API: interface `org.cloudhypervisor.DBusApi1` at the configured object path,
/// owning the configured name, with one method per REST endpoint and the `Event` signal relaying every
/// event-monitor record. It runs beside the REST API, on its own thread (see `DBusThread`).
///
/// ```swift
/// let dbus = try DBusService.start(options, handler: vmm, events: events, logger: logger)
/// let code = vmm.waitForExit()
/// dbus.stop()     // sends the replies still owed (VmmShutdown's) and the last events, releases the name
/// ```
public final class DBusService: Sendable {
    private let thread: DBusThread

    private init(thread: DBusThread) {
        self.thread = thread
    }

    /// Connects, owns the name, serves the object and starts relaying `events`. Throws
    /// `DBusServiceError` when any of that fails (no bus, name taken, …); nothing is left running then.
    public static func start(_ options: DBusOptions, handler: any VmmCommandHandling, events: EventMonitor,
                             logger: Logger = Logger(label: "cloud-hypervisor.dbus")) throws(DBusServiceError) -> DBusService {
        // Before any other libdbus call, so libdbus locks its connections (the D-Bus thread and the
        // starting thread both use this one).
        _ = dbus_threads_init_default()
        let connection = try BusConnection(bus: options.bus)
        let thread: DBusThread
        let object: APIObject
        do {
            thread = try DBusThread(connection: connection)
            object = APIObject(connection: connection, thread: thread, handler: handler, logger: logger)
            try connection.register(object, at: options.objectPath)
            try connection.requestName(options.serviceName, on: options.bus)
        } catch {
            connection.close()
            throw error
        }
        let path = options.objectPath
        events.observe { [weak thread] event in
            thread?.execute {
                guard let signal = Message.signal(path: path, interface: DBusMethod.interface,
                                                  name: Introspection.eventSignal, string: event.json) else { return }
                connection.send(signal)
            }
        }
        thread.start(idle: { object.isIdle }) {
            logger.error("D-Bus API stopped: the \(options.bus) closed the connection (the REST API keeps working)")
        }
        logger.info("D-Bus API serving \(DBusMethod.interface) at \(options.objectPath) as \(options.serviceName) on the \(options.bus)")
        return DBusService(thread: thread)
    }

    /// Stops serving: waits (at most two seconds) for the replies of calls still being carried out, sends
    /// what is queued and closes the connection. Blocks the caller; not to be called on the D-Bus thread.
    public func stop() {
        thread.stop()
    }
}
