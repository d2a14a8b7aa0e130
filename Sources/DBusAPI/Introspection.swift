/// The `org.freedesktop.DBus.Introspectable.Introspect` answer for our object: every method of
/// `DBusMethod.all`, the `Event` signal, and the standard interfaces we answer (Peer through libdbus), so
/// `busctl introspect`, `gdbus introspect` and generated proxies see the whole API.
enum Introspection {
    static let interface = "org.freedesktop.DBus.Introspectable"
    static let eventSignal = "Event"

    static let xml: String = {
        var lines = [
            #"<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN""#,
            #" "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">"#,
            "<node>",
            #" <interface name="org.freedesktop.DBus.Introspectable">"#,
            #"  <method name="Introspect"><arg name="xml_data" type="s" direction="out"/></method>"#,
            " </interface>",
            #" <interface name="org.freedesktop.DBus.Peer">"#,
            #"  <method name="Ping"/>"#,
            #"  <method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method>"#,
            " </interface>",
            #" <interface name="\#(DBusMethod.interface)">"#,
        ]
        for method in DBusMethod.all {
            var args = ""
            if let argument = method.argument {
                args += #"<arg name="\#(argument)" type="s" direction="in"/>"#
            }
            if method.returnsString { args += #"<arg type="s" direction="out"/>"# }
            lines.append(args.isEmpty ? #"  <method name="\#(method.name)"/>"#
                                      : #"  <method name="\#(method.name)">\#(args)</method>"#)
        }
        lines += [
            #"  <signal name="\#(eventSignal)"><arg name="event" type="s"/></signal>"#,
            " </interface>",
            "</node>",
        ]
        return lines.joined(separator: "\n") + "\n"
    }()
}
