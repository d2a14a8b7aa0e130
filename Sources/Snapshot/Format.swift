/// The constants of the snapshot format, as documented byte by byte in `snapshots/FORMAT.md`.
/// Changing any of them is a format change: bump `version` and keep readers for the old ones.
public enum SnapshotFormat {
    /// The format version this build writes, and the newest it reads (it reads every version from 1).
    /// Version 3 has version 2's layout; its section payloads are in the VMM's binary state encoding, which
    /// builds that read only versions 1 and 2 could not decode, so they refuse it up front.
    public static let version: UInt32 = 3

    /// The files of a snapshot directory.
    public static let configFileName = "config.json"
    public static let stateFileName = "state.bin"
    public static let memoryFileName = "memory.bin"
    public static var fileNames: [String] { [configFileName, stateFileName, memoryFileName] }

    /// Memory is scanned for zero pages at this granularity (the x86 base page).
    public static let pageSize = 4096

    /// Default memory chunk: 4 MiB (1024 pages). Larger chunks mean larger zstd frames (faster, smaller:
    /// 1 MiB → 4 MiB gains ≈ 10 % speed and 4 % size on guest-like memory; 8 MiB gains nothing more) but
    /// more memory in flight and coarser restore parallelism — see FORMAT.md "Chunk size".
    public static let defaultChunkSize = 4 << 20
    /// Chunk sizes a reader accepts: whole pages, 64 KiB … 64 MiB.
    static let chunkSizeLimits = (64 << 10)...(64 << 20)

    // Magics: ASCII, so that `xxd` shows what a file or record is.
    static let stateMagic = Magic.eight("CHSNAPST")
    static let memoryMagic = Magic.eight("CHSNAPMM")
    static let stateTrailerMagic = Magic.eight("STATEEND")
    static let memoryTrailerMagic = Magic.eight("MEMRYEND")
    static let sectionMagic = Magic.four("SECT")
    static let manifestMagic = Magic.four("MNFT")
    static let rangeTableMagic = Magic.four("RNGS")
    static let chunkMagic = Magic.four("CHNK")
    static let indexMagic = Magic.four("INDX")

    static let fileHeaderSize = 32
    static let stateTrailerSize = 32
    static let memoryTrailerSize = 64
    static let sectionHeaderSize = 32
    static let manifestHeaderSize = 48
    static let rangeTableHeaderSize = 16
    /// Version 2 stores each chunk's raw (incompressible) runs at a file offset that is a multiple of this,
    /// so that a restore can map them straight into guest memory.
    static let rawRunAlignment = 4096
    static let indexHeaderSize = 16

    /// Limits that keep a damaged length field from turning into a huge allocation.
    static let maxNameLength = 255
    static let maxSections = 1 << 20
    static let maxRanges = 1 << 16
    static let maxStateFileSize: UInt64 = 1 << 32
    static let maxMemorySize: UInt64 = 1 << 48
}

/// Little-endian ASCII magics.
enum Magic {
    static func eight(_ s: StaticString) -> UInt64 {
        precondition(s.utf8CodeUnitCount == 8)
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(s.utf8Start[i]) }
        return v
    }

    static func four(_ s: StaticString) -> UInt32 {
        precondition(s.utf8CodeUnitCount == 4)
        var v: UInt32 = 0
        for i in (0..<4).reversed() { v = v << 8 | UInt32(s.utf8Start[i]) }
        return v
    }
}
