/// Start's payload (16 bytes): the magic `SWIFT-CH`, `u32` page size, `u32` flags (none defined: 0).
///
/// Cloud Hypervisor's Start has no payload; the magic is how each side knows the other is this VMM
/// (the State payload differs from CH's, so a CH peer must be refused up front, not mid-stream).
public enum StartMessage {
    public static let size = 16
    static let magic = Array("SWIFT-CH".utf8)

    public static func encode() -> [UInt8] {
        var out = magic
        out.appendLE(UInt32(Limits.pageSize))
        out.appendLE(UInt32(0))
        return out
    }

    /// Checks a Start request (its header's version and its payload).
    public static func check(version: UInt16, payload: [UInt8]) throws(MigrationError) {
        guard payload.count == size else {
            throw .protocolViolation("Start without the SWIFT-CH payload: the source looks like Cloud Hypervisor, whose migration stream this VMM cannot receive (device state differs)")
        }
        guard Array(payload.prefix(8)) == magic else {
            throw .protocolViolation("Start payload does not begin with SWIFT-CH: not a swift-cloud-hypervisor source")
        }
        guard version == Limits.protocolVersion else {
            throw .protocolViolation("protocol version \(version) is not supported (this VMM speaks version \(Limits.protocolVersion)): use the same VMM build on both hosts")
        }
        let pageSize: UInt32 = payload.le(8), flags: UInt32 = payload.le(12)
        guard pageSize == UInt32(Limits.pageSize) else {
            throw .protocolViolation("page size \(pageSize) is not supported (this VMM uses \(Limits.pageSize))")
        }
        guard flags == 0 else { throw .protocolViolation("unknown Start flags 0x\(String(flags, radix: 16))") }
    }
}
