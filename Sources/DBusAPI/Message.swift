import CDBus

/// One reference to a libdbus message, released when the wrapper goes away. Method calls are kept this
/// way until their (possibly late) reply is built.
final class Message: @unchecked Sendable {
    // @unchecked: a DBusMessage is reference counted with atomic counts, and after it is built it is only
    // read (libdbus locks a message once it is sent or dispatched).
    let pointer: OpaquePointer

    /// Takes over the reference a libdbus `new` function returned.
    private init(adopting pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// Adds a reference to a message libdbus lends to a callback.
    convenience init(retaining pointer: OpaquePointer) {
        self.init(adopting: dbus_message_ref(pointer))
    }

    deinit { dbus_message_unref(pointer) }

    var interface: String? { dbus_message_get_interface(pointer).map { String(cString: $0) } }
    var member: String? { dbus_message_get_member(pointer).map { String(cString: $0) } }
    var signature: String { dbus_message_get_signature(pointer).map { String(cString: $0) } ?? "" }
    var isMethodCall: Bool { dbus_message_get_type(pointer) == DBUS_MESSAGE_TYPE_METHOD_CALL }

    /// The first argument when it is a string.
    var firstString: String? {
        var iterator = DBusMessageIter()
        guard dbus_message_iter_init(pointer, &iterator) != 0,
              dbus_message_iter_get_arg_type(&iterator) == Self.stringType else { return nil }
        var value: UnsafePointer<CChar>?
        dbus_message_iter_get_basic(&iterator, &value)
        return value.map { String(cString: $0) }
    }

    /// The reply to this method call, carrying `string` if given. Nil only when libdbus is out of memory.
    func methodReturn(_ string: String? = nil) -> Message? {
        guard let reply = dbus_message_new_method_return(pointer) else { return nil }
        let message = Message(adopting: reply)
        if let string, !message.append(string) { return nil }
        return message
    }

    /// The error reply to this method call.
    func errorReply(name: String, text: String) -> Message? {
        dbus_message_new_error(pointer, name, text).map { Message(adopting: $0) }
    }

    static func signal(path: String, interface: String, name: String, string: String) -> Message? {
        guard let signal = dbus_message_new_signal(path, interface, name) else { return nil }
        let message = Message(adopting: signal)
        return message.append(string) ? message : nil
    }

    /// `DBUS_TYPE_STRING`, which Swift cannot import (`((int) 's')`).
    private static let stringType = Int32(UInt8(ascii: "s"))

    /// Appends a string argument. Swift strings are valid UTF-8, which libdbus insists on (it aborts the
    /// process on invalid UTF-8); an embedded NUL ends the string early rather than failing.
    private func append(_ string: String) -> Bool {
        var iterator = DBusMessageIter()
        dbus_message_iter_init_append(pointer, &iterator)
        return string.withCString { text in
            var value: UnsafePointer<CChar>? = text
            return dbus_message_iter_append_basic(&iterator, Self.stringType, &value) != 0
        }
    }
}
