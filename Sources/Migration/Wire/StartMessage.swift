/// Start's payload (16 bytes): the magic `SWIFT-CH`, `u32` page size, `u32` flags (`StartFlags`).
///
/// Cloud Hypervisor's Start has no payload; the magic is how each side knows the other is this VMM
/// (the State payload differs from CH's, so a CH peer must be refused up front, not mid-stream).
public enum StartMessage {
    public static let size = 16
    static let magic = Array("SWIFT-CH".utf8)

    public static func encode(flags: StartFlags = []) -> [UInt8] {
        var out = magic
        out.appendLE(UInt32(Limits.pageSize))
        out.appendLE(flags.rawValue)
        return out
    }

    /// Checks a Start request (its header's version and its payload); returns its flags.
    public static func check(version: UInt16, payload: [UInt8]) throws(MigrationError) -> StartFlags {
        guard payload.count == size else {
            throw .protocolViolation("Start without the SWIFT-CH payload: the source looks like Cloud Hypervisor, whose migration stream this VMM cannot receive (device state differs)")
        }
        guard Array(payload.prefix(8)) == magic else {
            throw .protocolViolation("Start payload does not begin with SWIFT-CH: not a swift-cloud-hypervisor source")
        }
        guard (Limits.oldestProtocolVersion...Limits.protocolVersion).contains(version) else {
            throw .protocolViolation("protocol version \(version) is not supported (this VMM speaks versions \(Limits.oldestProtocolVersion)…\(Limits.protocolVersion)): use the same VMM build on both hosts")
        }
        let pageSize: UInt32 = payload.le(8), raw: UInt32 = payload.le(12)
        guard pageSize == UInt32(Limits.pageSize) else {
            throw .protocolViolation("page size \(pageSize) is not supported (this VMM uses \(Limits.pageSize))")
        }
        let flags = StartFlags(rawValue: raw)
        guard StartFlags.known.isSuperset(of: flags) else {
            throw .protocolViolation("unknown Start flags 0x\(String(raw, radix: 16)) (this VMM knows 0x\(String(StartFlags.known.rawValue, radix: 16)))")
        }
        guard !flags.isSuperset(of: [.localMemory, .compressedMemory]) else {
            throw .protocolViolation("Start announces both local and compressed memory: a local migration copies no pages to compress")
        }
        return flags
    }
}

/// What the source announces in Start, so that the destination knows how RAM will arrive before Config.
public struct StartFlags: OptionSet, Sendable, Equatable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Local migration: RAM arrives as memory fds (MemoryFd), never as pages, so the destination maps no
    /// RAM of its own at Config.
    public static let localMemory = StartFlags(rawValue: 1)

    /// Memory may also arrive as MemoryCompressed (zstd); without this flag the destination refuses it, so
    /// a stream is never decoded in a way its source did not announce.
    public static let compressedMemory = StartFlags(rawValue: 2)

    static let known: StartFlags = [.localMemory, .compressedMemory]
}
