#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// Why guest memory could not be set up or accessed.
public enum MemoryError: Error, CustomStringConvertible, Equatable {
    case mapFailed(size: UInt64, errno: Int32, hugepages: Bool)
    case memfdFailed(errno: Int32)
    case outOfRange(address: UInt64, count: UInt64)
    case tooSmall(size: UInt64, minimum: UInt64)
    /// A memory fd handed over by another process cannot back its region.
    case unusableMemoryFd(index: Int, reason: String)

    public var description: String {
        switch self {
        case let .mapFailed(size, err, huge):
            let why = String(cString: strerror(err))
            let hint = huge ? " (are enough hugepages reserved in /proc/sys/vm/nr_hugepages?)" : ""
            return "cannot map \(size >> 20) MiB of guest memory: \(why)\(hint)"
        case let .memfdFailed(err):
            return "cannot create the shared memory file: \(String(cString: strerror(err)))"
        case let .outOfRange(address, count):
            return "guest address range 0x\(String(address, radix: 16))+0x\(String(count, radix: 16)) is not guest RAM"
        case let .tooSmall(size, minimum):
            return "guest memory of \(size) bytes is too small: at least \(minimum >> 20) MiB is needed"
        case let .unusableMemoryFd(index, reason):
            return "memory fd \(index) cannot back guest RAM: \(reason)"
        }
    }
}

/// How guest RAM is backed on the host.
public struct MemoryOptions: Sendable, Equatable {
    /// Back RAM with a memfd (MAP_SHARED) so that another process can map it (local migration).
    public var shared: Bool
    /// Use huge pages (MAP_HUGETLB / MFD_HUGETLB).
    public var hugepages: Bool
    /// Populate every page up front: faults here cost ≈ 11 µs each when the guest takes them, ≈ 2 µs from the VMM.
    public var prefault: Bool

    public init(shared: Bool = false, hugepages: Bool = false, prefault: Bool = false) {
        self.shared = shared
        self.hugepages = hugepages
        self.prefault = prefault
    }
}

/// One contiguous range of guest physical memory and the host mapping behind it.
public struct GuestRegion: @unchecked Sendable {
    public let guestBase: UInt64
    public let size: UInt64
    public let host: UnsafeMutableRawPointer
    /// The memfd behind a shared region (for passing to another process), else nil.
    public let fd: Int32?

    public var guestEnd: UInt64 { guestBase + size }
    public func contains(_ address: UInt64, count: UInt64 = 1) -> Bool {
        address >= guestBase && count <= size && address - guestBase <= size - count
    }
}

/// Guest RAM. Owns the host mappings; unmaps them when released.
///
/// Access is bounds-checked per call; vCPUs and devices write concurrently, as real hardware does,
/// so this type itself holds no lock.
public final class GuestMemory: @unchecked Sendable {
    public let regions: [GuestRegion]
    public let options: MemoryOptions
    /// Pages the VMM wrote while a migration tracks them (see `DirtyBitmap`).
    public let vmmDirty: DirtyBitmap

    /// Total RAM in bytes.
    public var size: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// Maps `size` bytes of RAM laid out as `GuestLayout.ramRegions(size:)`.
    public convenience init(size: UInt64, options: MemoryOptions = MemoryOptions()) throws {
        try self.init(layout: GuestLayout.ramRegions(size: size), options: options)
    }

    public init(layout: [(base: UInt64, size: UInt64)], options: MemoryOptions) throws {
        var mapped: [GuestRegion] = []
        do {
            for (index, range) in layout.enumerated() {
                mapped.append(try Self.map(base: range.base, size: range.size, index: index, options: options))
            }
        } catch {
            for region in mapped { Self.unmap(region) }
            throw error
        }
        self.regions = mapped
        self.options = options
        vmmDirty = DirtyBitmap(regions: mapped)
    }

    /// Adopts existing mappings (used when restoring from memory fds handed over by another process).
    public init(adopting regions: [GuestRegion], options: MemoryOptions) {
        self.regions = regions
        self.options = options
        vmmDirty = DirtyBitmap(regions: regions)
    }

    deinit {
        for region in regions { Self.unmap(region) }
    }

    private static func map(base: UInt64, size: UInt64, index: Int, options: MemoryOptions) throws -> GuestRegion {
        var flags = options.shared ? MAP_SHARED : (MAP_PRIVATE | MAP_ANONYMOUS)
        var fd: Int32 = -1
        if options.shared {
            var mfdFlags = CKVM_MFD_CLOEXEC
            if options.hugepages { mfdFlags |= CKVM_MFD_HUGETLB }
            fd = ckvm_memfd_create("guest-ram\(index)", mfdFlags)
            guard fd >= 0 else { throw MemoryError.memfdFailed(errno: errno) }
            guard ftruncate(fd, off_t(size)) == 0 else {
                let err = errno
                close(fd)
                throw MemoryError.mapFailed(size: size, errno: err, hugepages: options.hugepages)
            }
        } else if options.hugepages {
            flags |= MAP_HUGETLB
        }
        // Huge pages must be reserved at mmap time: with MAP_NORESERVE the map succeeds and the first touch
        // of a page the pool cannot supply kills the VMM with SIGBUS.
        if !options.hugepages { flags |= MAP_NORESERVE }
        guard let host = mmap(nil, Int(size), PROT_READ | PROT_WRITE, flags, fd, 0), host != MAP_FAILED else {
            let err = errno
            if fd >= 0 { close(fd) }
            throw MemoryError.mapFailed(size: size, errno: err, hugepages: options.hugepages)
        }
        if !options.hugepages {
            // Transparent huge pages cut shadow-paging and fault costs; advisory, so failure is fine.
            _ = madvise(host, Int(size), 14 /* MADV_HUGEPAGE */)
        }
        if options.prefault {
            // MADV_POPULATE_WRITE (Linux 5.14); fall back to touching each page.
            if madvise(host, Int(size), 23 /* MADV_POPULATE_WRITE */) != 0 {
                let page = Int(sysconf(Int32(_SC_PAGESIZE)))
                var offset = 0
                while offset < Int(size) {
                    host.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
                    offset += page
                }
            }
        }
        return GuestRegion(guestBase: base, size: size, host: host, fd: fd >= 0 ? fd : nil)
    }

    private static func unmap(_ region: GuestRegion) {
        munmap(region.host, Int(region.size))
        if let fd = region.fd { close(fd) }
    }

    /// The region holding `[address, address+count)`, if that range is RAM in one piece.
    public func region(containing address: UInt64, count: UInt64 = 1) -> GuestRegion? {
        regions.first { $0.contains(address, count: count) }
    }

    /// A host pointer to `count` bytes of guest RAM at `address`.
    public func pointer(at address: UInt64, count: UInt64) throws -> UnsafeMutableRawPointer {
        guard let region = region(containing: address, count: count) else {
            throw MemoryError.outOfRange(address: address, count: count)
        }
        return region.host + Int(address - region.guestBase)
    }

    public func write(_ bytes: [UInt8], at address: UInt64) throws {
        let dst = try pointer(at: address, count: UInt64(bytes.count))
        bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, at address: UInt64) throws {
        guard let base = bytes.baseAddress else { return }
        let dst = try pointer(at: address, count: UInt64(bytes.count))
        dst.copyMemory(from: base, byteCount: bytes.count)
    }

    public func read(at address: UInt64, count: Int) throws -> [UInt8] {
        let src = try pointer(at: address, count: UInt64(count))
        return Array(UnsafeRawBufferPointer(start: src, count: count))
    }

    /// Stores a little-endian integer (x86 guests are little-endian, as is the host).
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws {
        let dst = try pointer(at: address, count: UInt64(MemoryLayout<T>.size))
        dst.storeBytes(of: value.littleEndian, as: T.self)
    }

    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) throws -> T {
        let src = try pointer(at: address, count: UInt64(MemoryLayout<T>.size))
        return T(littleEndian: src.loadUnaligned(as: T.self))
    }

    public func fill(_ byte: UInt8, at address: UInt64, count: UInt64) throws {
        let dst = try pointer(at: address, count: count)
        memset(dst, Int32(byte), Int(count))
    }

    /// Records that the VMM wrote `[address, address+count)` (device DMA), for live migration.
    public func markDirty(_ address: UInt64, count: UInt64) {
        vmmDirty.mark(address, count: count)
    }
}
