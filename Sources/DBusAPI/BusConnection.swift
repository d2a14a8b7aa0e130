import CDBus

/// Our private connection to the bus, owning the service name and serving one object.
///
/// Set up on the starting thread, then used only on the D-Bus thread, except that once that thread has
/// closed it, late work may run elsewhere (see `DBusThread`): `send` then finds `pointer` nil and drops
/// the message. The thread's queue lock orders that write before any such read.
final class BusConnection: @unchecked Sendable {
    private var pointer: OpaquePointer?
    let watches = Watches()

    /// Connects to `bus`. libdbus would `_exit` the process when the bus goes away; we turn that off so
    /// that only the D-Bus API stops and the VMM keeps running.
    init(bus: DBusOptions.Bus) throws(DBusServiceError) {
        var failure: String?
        pointer = LibDBusError.capturing { error in
            let connection: OpaquePointer?
            switch bus {
            case .session: connection = dbus_bus_get_private(DBUS_BUS_SESSION, error)
            case .system: connection = dbus_bus_get_private(DBUS_BUS_SYSTEM, error)
            case let .address(address):
                connection = dbus_connection_open_private(address, error)
                if let connection, dbus_bus_register(connection, error) == 0 {
                    dbus_connection_close(connection)
                    dbus_connection_unref(connection)
                    failure = LibDBusError.message(error) ?? "the bus did not answer Hello"
                    return nil
                }
            }
            if connection == nil { failure = LibDBusError.message(error) ?? "unknown libdbus error" }
            return connection
        }
        guard let pointer else { throw .cannotConnect(bus: bus, reason: failure ?? "unknown libdbus error") }
        dbus_connection_set_exit_on_disconnect(pointer, 0)
        guard watches.install(on: pointer) else {
            close()
            throw .cannotConnect(bus: bus, reason: "out of memory")
        }
    }

    /// Owns `name`, failing if another connection has it: queueing for it, or taking it over (zbus's
    /// default, hence CH's), would leave two VMMs fighting over one name.
    func requestName(_ name: String, on bus: DBusOptions.Bus) throws(DBusServiceError) {
        var failure: String?
        let reply = LibDBusError.capturing { error in
            let reply = dbus_bus_request_name(pointer, name, UInt32(DBUS_NAME_FLAG_DO_NOT_QUEUE), error)
            failure = LibDBusError.message(error)
            return reply
        }
        switch reply {
        case DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER, DBUS_REQUEST_NAME_REPLY_ALREADY_OWNER:
            return
        case DBUS_REQUEST_NAME_REPLY_EXISTS, DBUS_REQUEST_NAME_REPLY_IN_QUEUE:
            throw .nameTaken(name: name, bus: bus)
        default:
            throw .cannotOwnName(name: name, bus: bus, reason: failure ?? "unknown reply \(reply)")
        }
    }

    /// Routes method calls to `path` to `object` (libdbus keeps a reference to it until the connection is
    /// finalized). Calls it does not handle get libdbus's UnknownMethod error; `org.freedesktop.DBus.Peer`
    /// is answered by libdbus itself.
    func register(_ object: APIObject, at path: String) throws(DBusServiceError) {
        var vtable = DBusObjectPathVTable()
        vtable.unregister_function = { _, data in
            if let data { Unmanaged<APIObject>.fromOpaque(data).release() }
        }
        vtable.message_function = { _, message, data in
            guard let message, let data else { return DBUS_HANDLER_RESULT_NOT_YET_HANDLED }
            let handled = Unmanaged<APIObject>.fromOpaque(data).takeUnretainedValue().handle(Message(retaining: message))
            return handled ? DBUS_HANDLER_RESULT_HANDLED : DBUS_HANDLER_RESULT_NOT_YET_HANDLED
        }
        let data = Unmanaged.passRetained(object).toOpaque()
        if let reason = LibDBusError.capture({ dbus_connection_try_register_object_path(pointer, path, &vtable, data, $0) }) {
            Unmanaged<APIObject>.fromOpaque(data).release()
            throw .cannotRegisterObject(path: path, reason: reason)
        }
    }

    var isConnected: Bool { pointer.map { dbus_connection_get_is_connected($0) != 0 } ?? false }

    /// Queues `message` for sending (libdbus writes at once what the socket takes; the write watch does the
    /// rest). Dropped once the connection is closed.
    func send(_ message: Message) {
        guard let pointer else { return }
        _ = dbus_connection_send(pointer, message.pointer, nil)
    }

    /// Hands every complete incoming message to its handler.
    func dispatch() {
        guard let pointer else { return }
        while dbus_connection_dispatch(pointer) == DBUS_DISPATCH_DATA_REMAINS {}
    }

    /// Writes what is still queued (replies owed, the last events), then closes: the bus releases the name.
    func close() {
        guard let connection = pointer else { return }
        pointer = nil
        if dbus_connection_get_is_connected(connection) != 0 { dbus_connection_flush(connection) }
        dbus_connection_close(connection)
        dbus_connection_unref(connection)
    }
}
