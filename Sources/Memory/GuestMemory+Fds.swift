#if canImport(Glibc)
import Glibc
#endif

extension GuestMemory {
    /// Maps RAM that another process handed over as memfds (local migration): `fds[i]` backs `layout[i]`
    /// from offset 0, MAP_SHARED, so both processes see the same pages and nothing is copied. Takes every
    /// fd over: they close with this memory, or at once when it cannot be built.
    public convenience init(mapping fds: [Int32], layout: [(base: UInt64, size: UInt64)], hugepages: Bool) throws {
        precondition(fds.count == layout.count)
        var mapped: [GuestRegion] = []
        do {
            for (index, (fd, range)) in zip(fds, layout).enumerated() {
                try Self.checkBacking(fd, size: range.size, index: index)
                guard let host = mmap(nil, Int(range.size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0),
                      host != MAP_FAILED else {
                    throw MemoryError.mapFailed(size: range.size, errno: errno, hugepages: hugepages)
                }
                mapped.append(GuestRegion(guestBase: range.base, size: range.size, host: host, fd: fd))
            }
        } catch {
            for region in mapped { munmap(region.host, Int(region.size)) }
            fds.forEach { close($0) }
            throw error
        }
        self.init(adopting: mapped, options: MemoryOptions(shared: true, hugepages: hugepages))
    }

    /// A file shorter than its region would SIGBUS this process at the first access past its end.
    private static func checkBacking(_ fd: Int32, size: UInt64, index: Int) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw MemoryError.unusableMemoryFd(index: index, reason: String(cString: strerror(errno)))
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw MemoryError.unusableMemoryFd(index: index, reason: "not a memory file (mode 0o\(String(info.st_mode, radix: 8)))")
        }
        guard info.st_size >= 0, UInt64(info.st_size) >= size else {
            throw MemoryError.unusableMemoryFd(index: index, reason: "it holds \(info.st_size) bytes, its region \(size)")
        }
    }
}
