import CDBus
import Glibc
import Synchronization

/// The file descriptors libdbus wants watched for a connection (`dbus_connection_set_watch_functions`),
/// turned into `poll(2)` entries and back into `dbus_watch_handle` calls. This is what lets our own loop
/// drive the connection (and wake up for other work) instead of blocking inside libdbus.
final class Watches: Sendable {
    /// `DBusWatch` addresses (pointers are not Sendable). libdbus adds and removes watches from whichever
    /// thread is using the connection; the loop reads them.
    private let watches = Mutex<[Int]>([])

    /// Installs this object's callbacks on `connection`; libdbus keeps a reference until it finalizes the
    /// connection. No toggle callback: the loop reads each watch's enabled flag before every `poll`, and
    /// only the loop's thread uses the connection, so nothing toggles a watch while it waits.
    func install(on connection: OpaquePointer) -> Bool {
        dbus_connection_set_watch_functions(connection, { watch, data in
            guard let watch, let data else { return 0 }
            Unmanaged<Watches>.fromOpaque(data).takeUnretainedValue().watches.withLock { $0.append(Int(bitPattern: watch)) }
            return 1
        }, { watch, data in
            guard let watch, let data else { return }
            Unmanaged<Watches>.fromOpaque(data).takeUnretainedValue().watches.withLock { $0.removeAll { $0 == Int(bitPattern: watch) } }
        }, nil, Unmanaged.passRetained(self).toOpaque(), { data in
            if let data { Unmanaged<Watches>.fromOpaque(data).release() }
        }) != 0
    }

    /// The enabled watches with their `poll` entries.
    func pollEntries() -> [(watch: OpaquePointer, entry: pollfd)] {
        watches.withLock { $0 }.compactMap { address in
            guard let watch = OpaquePointer(bitPattern: address), dbus_watch_get_enabled(watch) != 0 else { return nil }
            let flags = dbus_watch_get_flags(watch)
            var events: Int16 = 0
            if flags & DBUS_WATCH_READABLE.rawValue != 0 { events |= Int16(POLLIN) }
            if flags & DBUS_WATCH_WRITABLE.rawValue != 0 { events |= Int16(POLLOUT) }
            return (watch, pollfd(fd: dbus_watch_get_unix_fd(watch), events: events, revents: 0))
        }
    }

    /// Lets libdbus read or write what `poll` reported ready. A watch removed meanwhile (while handling
    /// another) is skipped: it may be freed.
    func handle(_ watch: OpaquePointer, revents: Int16) {
        guard watches.withLock({ $0.contains(Int(bitPattern: watch)) }) else { return }
        var flags: UInt32 = 0
        if revents & Int16(POLLIN) != 0 { flags |= DBUS_WATCH_READABLE.rawValue }
        if revents & Int16(POLLOUT) != 0 { flags |= DBUS_WATCH_WRITABLE.rawValue }
        if revents & Int16(POLLHUP) != 0 { flags |= DBUS_WATCH_HANGUP.rawValue }
        if revents & Int16(POLLERR | POLLNVAL) != 0 { flags |= DBUS_WATCH_ERROR.rawValue }
        _ = dbus_watch_handle(watch, flags)
    }
}
