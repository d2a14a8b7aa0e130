import ArgumentParser
import Foundation
import Snapshot

/// Prints what a snapshot holds, from the state file and memory trailer only (fast on any size).
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a snapshot's sections, versions, sizes, memory ranges and compression ratio.")

    @Argument(help: "The snapshot directory (a path or file:// URL).")
    var directory: String

    @Flag(help: "Also list every memory chunk.")
    var chunks = false

    func run() throws {
        let reader = try openSnapshot(directory)
        print("snapshot \(reader.directory.path)")
        print("  format version \(reader.formatVersion), id \(hex(reader.snapshotID)), created \(reader.created)")
        print("  \(SnapshotFormat.configFileName): \(reader.config.count) bytes")
        print("sections (\(reader.sections.count)):")
        let rows = reader.sections.map { [$0.id, $0.type, String($0.version), String($0.size), hex($0.checksum)] }
        printTable(header: ["ID", "TYPE", "VERSION", "SIZE", "XXH64"], rows: rows, indent: "  ")

        let summary = reader.memorySummary
        print("memory ranges (\(reader.memoryRanges.count)), chunk size \(bytes(UInt64(reader.memoryChunkSize))), "
              + "\(reader.memoryChunks.count) chunks:")
        let rangeRows = reader.memoryRanges.enumerated().map { index, range in
            [String(index), hex(range.guestAddress), hex(range.guestAddress + range.size - 1), bytes(range.size)]
        }
        printTable(header: ["#", "GUEST START", "GUEST END", "SIZE"], rows: rangeRows, indent: "  ")
        let zeroBytes = summary.zeroPages * UInt64(SnapshotFormat.pageSize)
        let ratio = summary.fileSize == 0 ? 0 : Double(summary.totalBytes) / Double(summary.fileSize)
        print("memory: total \(bytes(summary.totalBytes)), zero \(bytes(min(zeroBytes, summary.totalBytes))) "
              + "(\(summary.zeroPages) pages, \(percent(zeroBytes, of: summary.totalBytes))), "
              + "stored \(bytes(summary.storedBytes)), \(SnapshotFormat.memoryFileName) \(bytes(summary.fileSize)), "
              + "compression ratio \(String(format: "%.2f", ratio)):1")
        if reader.formatVersion >= 2 {
            print("  incompressible: \(bytes(summary.rawBytes)) in page-aligned raw runs "
                  + "(memory_restore_mode=ondemand maps them instead of reading them)")
        }
        if chunks {
            let chunkRows = reader.memoryChunks.map {
                [String($0.index), String($0.range), hex($0.offsetInRange), String($0.length), hex($0.fileOffset),
                 String($0.recordLength)]
            }
            printTable(header: ["CHUNK", "RANGE", "OFFSET", "LENGTH", "FILE OFFSET", "RECORD"], rows: chunkRows, indent: "  ")
        }
    }
}

/// Checks every checksum; exits non-zero naming the first problem.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify every checksum of a snapshot (sections, config, every memory chunk).")

    @Argument(help: "The snapshot directory (a path or file:// URL).")
    var directory: String

    @Option(help: "Threads that read and check memory chunks.")
    var threads = SnapshotWriter.defaultThreads

    func run() throws {
        do {
            let reader = try SnapshotReader(directory: snapshotURL(directory))
            let stats = try reader.verifyAll(threads: threads)
            print("ok: \(reader.sections.count) sections, \(stats.chunks) memory chunks "
                  + "(\(bytes(stats.bytesRead)) read, \(bytes(stats.bytesRestored)) of guest data) "
                  + "verified in \(String(format: "%.3f", stats.seconds)) s")
        } catch let error as SnapshotError {
            FileHandle.standardError.write(Data("ch-snapshot: verify failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

func snapshotURL(_ argument: String) -> URL {
    if argument.hasPrefix("file://"), let url = URL(string: argument) { return url }
    return URL(fileURLWithPath: argument)
}

func openSnapshot(_ argument: String) throws -> SnapshotReader {
    do {
        return try SnapshotReader(directory: snapshotURL(argument))
    } catch let error as SnapshotError {
        FileHandle.standardError.write(Data("ch-snapshot: \(error)\n".utf8))
        throw ExitCode(1)
    }
}
