import Config
import Glibc

/// Where the REST API listens: a path the server binds (and removes on stop), or a socket the parent
/// process already created and passed down (`--api-socket fd=N`, used by sandboxes such as Kata).
public enum APISocket: Sendable, Equatable {
    case path(String)
    case fd(Int32)

    /// Cloud Hypervisor's `--api-socket` value: `path=…`, `fd=…` or a bare path.
    ///
    /// As CH does, anything that is not a valid `key=value` list is taken whole as a path (so a path may
    /// contain commas), and `fd` wins over `path` when both are given.
    public static func parse(_ input: String) throws -> APISocket {
        let flag = "--api-socket"
        guard !input.isEmpty else {
            throw OptionError.syntax(flag: flag, input: input, detail: "expected path=PATH, fd=FD or a path")
        }
        guard let options = try? OptionParser(flag: flag, input: input, known: ["path", "fd"]) else {
            return .path(input)
        }
        if options.isSet("fd") {
            guard let fd = try options.integer("fd", as: Int32.self), fd >= 0 else {
                throw OptionError.invalidValue(flag: flag, option: "fd", value: options.string("fd") ?? "",
                                               expected: "a non-negative file descriptor number")
            }
            return .fd(fd)
        }
        guard let path = options.string("path") else { return .path(input) }
        guard !path.isEmpty else {
            throw OptionError.invalidValue(flag: flag, option: "path", value: path, expected: "a socket path")
        }
        return .path(path)
    }

    /// CH's default when `--api-socket` is absent: `/run/user/{uid}/cloud-hypervisor.{pid}`.
    public static var `default`: APISocket {
        .path("/run/user/\(getuid())/cloud-hypervisor.\(getpid())")
    }
}
