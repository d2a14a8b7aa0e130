import Config
import Foundation

/// One of Cloud Hypervisor's API endpoints, whatever carries it: REST puts it under `/api/v1/<name>`,
/// D-Bus renames it (`vm.add-disk` → `VmAddDisk`). Both frontends read this one table so that a body
/// means the same command, and fails the same way, on either.
public struct APIEndpoint: Sendable {
    public enum Body: Sendable, Equatable {
        /// Takes no body; CH refuses one over REST.
        case none
        /// Takes no body but drops one if sent, as CH does on its GET endpoints and `vmm.shutdown`.
        case ignored
        /// Needs a JSON body of the endpoint's Config type.
        case required
    }

    /// CH's name, e.g. `vm.boot`.
    public let name: String
    public let body: Body
    /// Decodes the body (ignored unless `body` is `.required`; nil then reads as empty) into the command.
    public let command: @Sendable (Data?) -> Result<VmmCommand, APIDecodingFailure>

    /// Keyed by `name`.
    public static let named: [String: APIEndpoint] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// CH's endpoints (vmm/src/api), but `vm.add-generic-vhost-user`: no `VmmCommand` for it yet.
    public static let all: [APIEndpoint] = [
        plain("vmm.ping", .ping, body: .ignored),
        plain("vmm.shutdown", .shutdownVmm, body: .ignored),
        plain("vm.info", .info, body: .ignored),
        plain("vm.counters", .counters, body: .ignored),

        json("vm.create", VmmCommand.create),
        plain("vm.boot", .boot),
        plain("vm.delete", .delete),
        plain("vm.pause", .pause),
        plain("vm.resume", .resume),
        plain("vm.shutdown", .shutdown),
        plain("vm.reboot", .reboot),
        plain("vm.power-button", .powerButton),
        plain("vm.nmi", .nmi),

        json("vm.resize", VmmCommand.resize),
        json("vm.resize-zone", VmmCommand.resizeZone),
        json("vm.resize-disk", VmmCommand.resizeDisk),

        json("vm.add-device") { .addDevice(.device($0)) },
        json("vm.add-disk") { .addDevice(.disk($0)) },
        json("vm.add-fs") { .addDevice(.fs($0)) },
        json("vm.add-pmem") { .addDevice(.pmem($0)) },
        json("vm.add-net") { .addDevice(.net($0)) },
        json("vm.add-vsock") { .addDevice(.vsock($0)) },
        json("vm.add-vdpa") { .addDevice(.vdpa($0)) },
        json("vm.add-user-device") { .addDevice(.userDevice($0)) },
        json("vm.remove-device", VmmCommand.removeDevice),

        json("vm.snapshot", VmmCommand.snapshot),
        json("vm.restore", VmmCommand.restore),
        json("vm.coredump", VmmCommand.coredump),
        json("vm.send-migration", VmmCommand.sendMigration),
        json("vm.receive-migration", VmmCommand.receiveMigration),
        // Beyond CH.
        plain("vm.migration-progress", .migrationProgress, body: .ignored),
        plain("vm.cancel-migration", .cancelMigration),
    ]

    private static func plain(_ name: String, _ command: VmmCommand, body: Body = .none) -> APIEndpoint {
        APIEndpoint(name: name, body: body, command: { _ in .success(command) })
    }

    private static func json<Value: Decodable & SendableMetatype>(
        _ name: String, _ command: @escaping @Sendable (Value) -> VmmCommand
    ) -> APIEndpoint {
        APIEndpoint(name: name, body: .required, command: { data in
            APIJSON.decode(Value.self, from: data ?? Data()).map(command)
        })
    }
}

/// A body that is not valid JSON or does not fit the endpoint's type: CH's "Failed to deserialize JSON"
/// (serde's message in CH), with a detail naming the offending field, since that is what a client must fix.
public struct APIDecodingFailure: Error, Sendable, Equatable {
    public let detail: String

    public init(detail: String) { self.detail = detail }

    /// CH's error body for it.
    public var chain: [String] { ["Failed to deserialize JSON", detail] }
}

extension VmmError {
    /// CH's error body for a refused or failed command.
    public var apiChain: [String] { ["Error from API"] + chain }
}

/// The JSON both frontends read and write, shaped as CH's REST bodies.
public enum APIJSON {
    /// Compact JSON as serde writes it: it does not escape '/', and paths are in most bodies.
    public static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return try encoder.encode(value)
    }

    /// The response body, nil where there is none (REST's 204; D-Bus sends "").
    public static func body(of response: VmmResponse) throws -> Data? {
        switch response {
        case .none, .deviceAdded(nil): nil
        case let .ping(pong): try encode(pong)
        case let .info(info): try encode(info)
        case let .counters(counters): try encode(counters)
        case let .deviceAdded(device?): try encode(device)
        case let .migrationProgress(progress): try encode(progress)
        }
    }

    /// Unknown fields are ignored: the Config types decode leniently, as CH's serde types do.
    public static func decode<Value: Decodable>(_ type: Value.Type, from data: Data) -> Result<Value, APIDecodingFailure> {
        do {
            return .success(try JSONDecoder().decode(Value.self, from: data))
        } catch let error as DecodingError {
            return .failure(APIDecodingFailure(detail: detail(error, in: data)))
        } catch {
            return .failure(APIDecodingFailure(detail: "\(error)"))
        }
    }

    /// `DecodingError.summary`, but with the path in backticks as serde writes it ("missing field `size` at
    /// `memory`"), and for unparsable bodies the parser's own words.
    static func detail(_ error: DecodingError, in data: Data) -> String {
        let path: [any CodingKey]
        switch error {
        case let .keyNotFound(_, context), let .typeMismatch(_, context), let .valueNotFound(_, context):
            path = context.codingPath
        case let .dataCorrupted(context) where context.codingPath.isEmpty:
            return syntaxError(in: data)
        case let .dataCorrupted(context):
            path = context.codingPath
        @unknown default:
            return error.summary
        }
        // summary writes the path as `a.b[0]` after " at ": the same text, quoted.
        let bare = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let at = " at " + (bare.hasPrefix(".") ? String(bare.dropFirst()) : bare)
        guard !path.isEmpty, let range = error.summary.range(of: at) else { return error.summary }
        return error.summary.replacingCharacters(in: range, with: " at `\(at.dropFirst(4))`")
    }

    /// JSONDecoder says only "not valid JSON", both for bad syntax and for a number its field cannot hold;
    /// the parser tells the two apart and says where the syntax breaks.
    private static func syntaxError(in data: Data) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed)
            return "a number does not fit its field (negative, fractional or too large)"
        } catch {
            return (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "invalid JSON"
        }
    }
}
