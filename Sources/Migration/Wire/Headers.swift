/// The 16-byte request header: `u16 command`, `u16 version` (Start only, else 0), `u32 reserved` (0),
/// `u64 length` of the payload that follows (for Memory: the range table only; the page bytes follow it).
public struct RequestHeader: Sendable, Equatable {
    public static let size = 16
    public let command: Command
    public let version: UInt16
    public let length: UInt64

    public init(_ command: Command, length: UInt64, version: UInt16 = 0) {
        self.command = command
        self.length = length
        self.version = version
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        out.appendLE(command.rawValue)
        out.appendLE(version)
        out.appendLE(UInt32(0))
        out.appendLE(length)
        return out
    }

    /// Parses and checks a header: a known command, zero reserved bytes, a length within the command's bounds.
    public init(decoding raw: [UInt8]) throws(MigrationError) {
        precondition(raw.count == Self.size)
        let code: UInt16 = raw.le(0)
        guard let command = Command(rawValue: code) else {
            throw .protocolViolation("unknown command \(code) (this VMM knows \(Command.allCases.map { "\($0.rawValue) \($0)" }.joined(separator: ", ")))")
        }
        let version: UInt16 = raw.le(2)
        let reserved: UInt32 = raw.le(4)
        let length: UInt64 = raw.le(8)
        guard reserved == 0, command == .start || version == 0 else {
            throw .protocolViolation("\(command) header has non-zero reserved bytes")
        }
        guard command.allowedLengths.contains(length) else {
            throw .protocolViolation("\(command) declares \(length) payload bytes; allowed \(command.allowedLengths.lowerBound)…\(command.allowedLengths.upperBound)")
        }
        self.init(command, length: length, version: version)
    }
}

/// The 16-byte response header: `u16 status`, 6 zero bytes, `u64 length` of the error message that follows.
public struct ResponseHeader: Sendable, Equatable {
    public enum Status: UInt16, Sendable, CustomStringConvertible {
        case ok = 1, error = 2
        public var description: String { self == .ok ? "Ok" : "Error" }
    }
    public static let size = 16
    public let status: Status
    public let length: UInt64

    public init(_ status: Status, length: UInt64 = 0) {
        self.status = status
        self.length = length
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        out.appendLE(status.rawValue)
        out.append(contentsOf: [0, 0, 0, 0, 0, 0])
        out.appendLE(length)
        return out
    }

    public init(decoding raw: [UInt8]) throws(MigrationError) {
        precondition(raw.count == Self.size)
        let code: UInt16 = raw.le(0)
        guard let status = Status(rawValue: code) else { throw .protocolViolation("unknown response status \(code)") }
        let length: UInt64 = raw.le(8)
        guard length <= (status == .ok ? 0 : Limits.maxErrorBytes) else {
            throw .protocolViolation("\(status) response declares \(length) bytes of message")
        }
        self.init(status, length: length)
    }
}
