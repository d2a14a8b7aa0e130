import Foundation

/// One component's saved state (a vCPU, the KVM VM, a device), as the snapshot sections carry it.
public struct StateSection: Sendable, Equatable {
    public let id: String
    public let type: String
    public let version: UInt32
    public let payload: Data

    public init(id: String, type: String, version: UInt32, payload: Data) {
        self.id = id
        self.type = type
        self.version = version
        self.payload = payload
    }
}

/// State's payload: `u32 count`, then per section `u16 id length, id (UTF-8), u16 type length, type,
/// u32 version, u32 payload length, payload`. Exactly the declared bytes, no duplicates.
public enum StatePayload {
    static let maxNameBytes = 255
    static let maxSections = 4096

    public static func encode(_ sections: [StateSection]) throws(MigrationError) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(UInt32(sections.count))
        for section in sections {
            for name in [section.id, section.type] {
                let bytes = Array(name.utf8)
                guard (1...maxNameBytes).contains(bytes.count) else {
                    throw .failed("state section name '\(name)' must be 1…\(maxNameBytes) bytes")
                }
                out.appendLE(UInt16(bytes.count))
                out.append(contentsOf: bytes)
            }
            out.appendLE(section.version)
            out.appendLE(UInt32(section.payload.count))
            out.append(contentsOf: section.payload)
        }
        guard out.count <= Limits.maxStateBytes else {
            throw .failed("the VM state is \(out.count) bytes, more than the protocol's \(Limits.maxStateBytes)")
        }
        return out
    }

    public static func decode(_ raw: [UInt8]) throws(MigrationError) -> [StateSection] {
        var reader = Reader(raw: raw)
        let count: UInt32 = try reader.integer("section count")
        guard count <= maxSections else { throw .protocolViolation("State declares \(count) sections (at most \(maxSections))") }
        var sections: [StateSection] = []
        var seen = Set<String>()
        for index in 0..<Int(count) {
            let id = try reader.name("id of section \(index)")
            let type = try reader.name("type of section '\(id)'")
            let version: UInt32 = try reader.integer("version of section '\(id)'")
            let length: UInt32 = try reader.integer("length of section '\(id)'")
            let payload = try reader.bytes(Int(length), "payload of section '\(id)'")
            guard seen.insert(id).inserted else { throw .protocolViolation("State has section '\(id)' twice") }
            sections.append(StateSection(id: id, type: type, version: version, payload: Data(payload)))
        }
        guard reader.offset == raw.count else {
            throw .protocolViolation("State has \(raw.count - reader.offset) bytes after its last section")
        }
        return sections
    }

    /// Bounds-checked reads: running past the end names the field that was cut off.
    private struct Reader {
        let raw: [UInt8]
        var offset = 0

        mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(MigrationError) -> ArraySlice<UInt8> {
            guard count <= raw.count - offset else { throw .protocolViolation("State ends inside the \(what())") }
            defer { offset += count }
            return raw[offset..<offset + count]
        }

        mutating func integer<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws(MigrationError) -> T {
            let start = offset
            _ = try bytes(MemoryLayout<T>.size, what())
            return raw.le(start)
        }

        mutating func name(_ what: @autoclosure () -> String) throws(MigrationError) -> String {
            let length: UInt16 = try integer(what())
            guard (1...UInt16(StatePayload.maxNameBytes)).contains(length) else {
                throw .protocolViolation("State: \(what()) has length \(length) (1…\(StatePayload.maxNameBytes))")
            }
            guard let text = String(validating: try bytes(Int(length), what()), as: UTF8.self) else {
                throw .protocolViolation("State: \(what()) is not UTF-8")
            }
            return text
        }
    }
}
