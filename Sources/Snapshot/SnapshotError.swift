#if canImport(Glibc)
import Glibc
#endif

/// Where in a snapshot file a problem was found, so that an error can say "section 'vcpu-1'" or "chunk 17"
/// rather than "bad data".
public enum SnapshotPlace: Equatable, Sendable, CustomStringConvertible {
    case header
    case trailer
    case manifest
    /// A section whose header was read and checked.
    case section(id: String, type: String, version: UInt32)
    /// A section whose own header cannot be trusted: its position, and its id as the manifest names it.
    case sectionEntry(index: Int, id: String?)
    case rangeTable
    case index
    /// A memory chunk: its number in the file, its range, and its byte offset inside that range.
    case chunk(index: Int, range: Int, offset: UInt64)
    /// One run of a memory chunk (version 2 checksums raw runs one by one).
    case chunkRun(index: Int, range: Int, offset: UInt64, run: Int)
    /// A chunk whose header cannot be trusted (found while locating a truncation).
    case chunkEntry(index: Int)
    /// A guest memory range.
    case range(index: Int, guestAddress: UInt64, size: UInt64)

    public var description: String {
        switch self {
        case .header: return "header"
        case .trailer: return "trailer"
        case .manifest: return "manifest"
        case let .section(id, type, version): return "section '\(id)' (type \(type), version \(version))"
        case let .sectionEntry(index, id?): return "section #\(index) ('\(id)' in the manifest)"
        case let .sectionEntry(index, nil): return "section #\(index)"
        case .rangeTable: return "range table"
        case .index: return "chunk index"
        case let .chunk(index, range, offset): return "chunk \(index) (range \(range) +\(hex(offset)))"
        case let .chunkRun(index, range, offset, run): return "chunk \(index) (range \(range) +\(hex(offset))), run \(run)"
        case let .chunkEntry(index): return "chunk \(index)"
        case let .range(index, address, size): return "range \(index) (guest \(hex(address)), \(hex(size)) bytes)"
        }
    }
}

/// Everything that can go wrong writing or reading a snapshot. Each message names the file and, where
/// there is one, the section or chunk, and says what is wrong — so that a refused restore is actionable.
public enum SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    case directoryMissing(path: String)
    case notADirectory(path: String)
    /// A snapshot file already exists: nothing is overwritten.
    case fileExists(file: String, directory: String)
    case fileMissing(file: String, directory: String)
    /// A system call failed (disk full, directory vanished, permissions…).
    case io(file: String, operation: String, errno: Int32)
    /// The file is not a snapshot file of the expected kind (wrong magic, empty, foreign data).
    case notSnapshotFile(file: String, found: String)
    case newerVersion(file: String, version: UInt32, supported: UInt32)
    case unsupportedVersion(file: String, version: UInt32)
    /// The file ends inside `place`: `offset` is where the missing data starts.
    case truncated(file: String, place: SnapshotPlace, offset: UInt64, fileSize: UInt64)
    case checksumMismatch(file: String, place: SnapshotPlace)
    case corrupt(file: String, place: SnapshotPlace, problem: String)
    /// Files that do not belong together (another snapshot's memory file, an edited config).
    case mismatch(file: String, problem: String)
    /// The caller's guest memory does not match the snapshot's memory ranges.
    case layoutMismatch(place: SnapshotPlace, problem: String)
    case sectionMissing(id: String)
    case sectionType(id: String, expected: String, found: String)
    /// The API was used wrongly (duplicate section, finish twice, overlapping ranges…).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .directoryMissing(path): return "\(path): snapshot directory does not exist"
        case let .notADirectory(path): return "\(path): not a directory"
        case let .fileExists(file, directory):
            return "\(file): already exists in \(directory); refusing to overwrite a snapshot"
        case let .fileMissing(file, directory): return "\(file): missing in \(directory)"
        case let .io(file, operation, code): return "\(file): \(operation) failed: \(errnoText(code))"
        case let .notSnapshotFile(file, found): return "\(file): not a snapshot file (\(found))"
        case let .newerVersion(file, version, supported):
            return "\(file): format version \(version) is newer than this build supports (\(supported))"
        case let .unsupportedVersion(file, version): return "\(file): format version \(version) is not supported"
        case let .truncated(file, place, offset, size):
            return "\(file): truncated in \(place) at offset \(hex(offset)) (file is \(hex(size)) bytes)"
        case let .checksumMismatch(file, place): return "\(file): \(place): checksum mismatch"
        case let .corrupt(file, place, problem): return "\(file): \(place): \(problem)"
        case let .mismatch(file, problem): return "\(file): \(problem)"
        case let .layoutMismatch(place, problem): return "memory layout: \(place): \(problem)"
        case let .sectionMissing(id): return "\(SnapshotFormat.stateFileName): no section '\(id)'"
        case let .sectionType(id, expected, found):
            return "\(SnapshotFormat.stateFileName): section '\(id)' has type \(found), expected \(expected)"
        case let .invalidArgument(text): return text
        }
    }

    /// The file the error is about, if it is about one.
    public var file: String? {
        switch self {
        case let .fileExists(file, _), let .fileMissing(file, _), let .io(file, _, _),
             let .notSnapshotFile(file, _), let .newerVersion(file, _, _), let .unsupportedVersion(file, _),
             let .truncated(file, _, _, _), let .checksumMismatch(file, _), let .corrupt(file, _, _),
             let .mismatch(file, _):
            return file
        case .sectionMissing, .sectionType: return SnapshotFormat.stateFileName
        case .directoryMissing, .notADirectory, .layoutMismatch, .invalidArgument: return nil
        }
    }

    /// The section or chunk the error is about, if any.
    public var place: SnapshotPlace? {
        switch self {
        case let .truncated(_, place, _, _), let .checksumMismatch(_, place), let .corrupt(_, place, _),
             let .layoutMismatch(place, _):
            return place
        default: return nil
        }
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}
