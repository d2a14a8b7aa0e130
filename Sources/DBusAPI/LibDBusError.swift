import CDBus

/// libdbus reports failures through a `DBusError` out-parameter that must be initialized and freed
/// around every call; this keeps that ceremony in one place.
enum LibDBusError {
    /// Runs `call` with a fresh `DBusError` and returns its message when the call failed (returned
    /// false, or set the error), nil when it succeeded.
    static func capture(_ call: (UnsafeMutablePointer<DBusError>) -> dbus_bool_t) -> String? {
        var failure: String?
        capturing { error in
            let ok = call(error) != 0
            failure = ok ? nil : message(error) ?? "unknown libdbus error"
        }
        return failure
    }

    /// Runs `body` with a fresh `DBusError`, freed afterwards.
    static func capturing<T>(_ body: (UnsafeMutablePointer<DBusError>) -> T) -> T {
        var error = DBusError()
        dbus_error_init(&error)
        defer { dbus_error_free(&error) }
        return body(&error)
    }

    /// The error's message (with its name when the message alone is unclear), nil when it is not set.
    static func message(_ error: UnsafeMutablePointer<DBusError>) -> String? {
        guard dbus_error_is_set(error) != 0 else { return nil }
        let message = error.pointee.message.map { String(cString: $0) } ?? ""
        let name = error.pointee.name.map { String(cString: $0) } ?? ""
        return message.isEmpty ? name : message
    }
}
