import Foundation

/// What the state file records about one section. The payload is opaque to this module: the VMM puts a
/// component's encoded state there and uses `version` to decode states written by older builds.
public struct SectionInfo: Sendable, Equatable {
    /// Unique in a snapshot: "vcpu-0", "vm", "__serial".
    public let id: String
    /// What kind of component wrote it: "vcpu", "kvm-vm", "serial8250".
    public let type: String
    /// The component's own state version (not the file format version).
    public let version: UInt32
    /// Payload length in bytes.
    public let size: Int
    /// XXH64 of the payload.
    public let checksum: UInt64
    /// Where the section's record starts in `state.bin` (for inspection and corruption tests).
    public let fileOffset: UInt64

    var place: SnapshotPlace { .section(id: id, type: type, version: version) }
}

/// A section with its payload, checksum verified.
public struct Section: Sendable, Equatable {
    public let info: SectionInfo
    public let payload: Data

    public var id: String { info.id }
    public var type: String { info.type }
    public var version: UInt32 { info.version }
}

/// Section ids and types: short, non-empty UTF-8, unique ids. Checked when written, so a reader never
/// has to guess what a malformed name meant.
enum SectionName {
    static func validate(_ name: String, what: String) throws {
        let count = name.utf8.count
        guard count > 0, count <= SnapshotFormat.maxNameLength else {
            throw SnapshotError.invalidArgument(
                "section \(what) '\(name)' must be 1…\(SnapshotFormat.maxNameLength) bytes of UTF-8, is \(count)")
        }
    }
}
