#if canImport(Glibc)
import Glibc
#endif
import CKVM

/// A file descriptor with positioned I/O whose every failure is a `SnapshotError` naming the snapshot file.
///
/// POSIX rather than FileHandle: `pread`/`pwrite` at explicit offsets let the restore threads share one
/// descriptor, and errno survives into the message (ENOSPC, ENOENT when the directory vanished…).
final class SnapshotFileIO: @unchecked Sendable {
    /// The snapshot file's name as errors show it ("memory.bin"), not necessarily its path.
    let name: String
    let path: String
    private let fd: Int32
    /// `memory.bin` is also opened with O_DIRECT for reading raw runs that are not in the page cache.
    private let directFD: Int32?

    private init(name: String, path: String, fd: Int32, directFD: Int32? = nil) {
        self.name = name
        self.path = path
        self.fd = fd
        self.directFD = directFD
    }

    deinit {
        close(fd)
        if let directFD { close(directFD) }
    }

    /// Creates a new file; fails if it exists (O_EXCL), so nothing is ever overwritten.
    static func create(path: String, name: String) throws -> SnapshotFileIO {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SnapshotError.io(file: name, operation: "create \(path)", errno: errno) }
        return SnapshotFileIO(name: name, path: path, fd: fd)
    }

    /// A second descriptor for this file with O_DIRECT: writes through it go from the caller's memory to the
    /// disk without a copy into the page cache. Nil where the filesystem does not support it (tmpfs).
    func openDirect() -> SnapshotFileIO? {
        let fd = open(path, O_WRONLY | O_CLOEXEC | CKVM_O_DIRECT)
        return fd >= 0 ? SnapshotFileIO(name: name, path: path, fd: fd) : nil
    }

    /// What O_DIRECT can write: page-aligned memory, whole pages (the file offset is the caller's business).
    static func directWritable(_ bytes: UnsafeRawBufferPointer) -> Bool {
        Int(bitPattern: bytes.baseAddress) % SnapshotFormat.pageSize == 0 && bytes.count % SnapshotFormat.pageSize == 0
    }

    /// `direct`: also open it with O_DIRECT, for `readBulk` (where the filesystem supports it); reads through
    /// the page cache then fetch only what they ask for (POSIX_FADV_RANDOM): readahead after a chunk's head
    /// would pull in the raw runs that follow it, which `readBulk` reads directly.
    static func openForReading(path: String, name: String, directory: String, direct: Bool = false) throws -> SnapshotFileIO {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw SnapshotError.fileMissing(file: name, directory: directory) }
            throw SnapshotError.io(file: name, operation: "open \(path)", errno: code)
        }
        let directFD = direct ? open(path, O_RDONLY | O_CLOEXEC | CKVM_O_DIRECT) : -1
        if directFD >= 0 { _ = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) }
        let file = SnapshotFileIO(name: name, path: path, fd: fd, directFD: directFD >= 0 ? directFD : nil)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SnapshotError.io(file: name, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw SnapshotError.notSnapshotFile(file: name, found: "not a regular file")
        }
        return file
    }

    func size() throws -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SnapshotError.io(file: name, operation: "stat", errno: errno) }
        return UInt64(st.st_size)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotError.io(file: name, operation: "write of \(bytes.count) bytes at offset \(hex(offset))",
                                       errno: errno)
            }
            if n == 0 { throw SnapshotError.io(file: name, operation: "write at offset \(hex(offset))", errno: ENOSPC) }
            done += n
        }
    }

    /// Writes `pieces` one after the other from `offset` (`pwritev`): a chunk record's head and its raw runs
    /// go to the file straight from the head buffer and from guest memory, without being gathered first.
    func write(_ pieces: [UnsafeRawBufferPointer], at offset: UInt64) throws {
        var vectors = pieces.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }
        let total = pieces.reduce(0) { $0 + $1.count }
        var done = 0, first = 0
        while done < total {
            let batch = min(vectors.count - first, 1024)   // IOV_MAX on Linux
            let n = vectors.withUnsafeMutableBufferPointer {
                pwritev(fd, $0.baseAddress! + first, Int32(batch), off_t(offset) + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotError.io(file: name, operation: "write of \(total) bytes at offset \(hex(offset))", errno: errno)
            }
            if n == 0 { throw SnapshotError.io(file: name, operation: "write at offset \(hex(offset))", errno: ENOSPC) }
            done += n
            // Skip what was written: whole vectors, then the written part of a partly written one.
            var left = n
            while left > 0 && left >= vectors[first].iov_len {
                left -= vectors[first].iov_len
                first += 1
            }
            if left > 0 {
                vectors[first].iov_base += left
                vectors[first].iov_len -= left
            }
        }
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read (fewer only at end of file).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try read(into: buffer, at: offset, fd: fd)
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, fd: Int32) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw SnapshotError.io(file: name, operation: "read at offset \(hex(offset))", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads a large piece into memory (a raw run into guest memory). If none of it is in the page cache and
    /// the file was opened `direct`, with O_DIRECT straight into `buffer` (when it and `offset` are page-aligned
    /// and it is whole pages): cold data read through the page cache costs a copy and a new cache page per page
    /// (restoring 512 MiB that way: median 0.81 s to running here, with O_DIRECT 0.64 s). Cached data is copied from
    /// the cache. Returns how many bytes were read.
    func readBulk(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        let page = SnapshotFormat.pageSize
        guard let directFD, Int(bitPattern: buffer.baseAddress) % page == 0, buffer.count % page == 0,
              offset % UInt64(page) == 0, ckvm_cached_pages(fd, Int64(offset), Int64(buffer.count)) == 0 else {
            return try read(into: buffer, at: offset)
        }
        return try read(into: buffer, at: offset, fd: directFD)
    }

    /// Reads `count` bytes at `offset` into a new array (short at end of file).
    func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try bytes.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        bytes.removeLast(count - n)
        return bytes
    }

    /// Maps `length` bytes of the file at `offset` copy-on-write over `address`, replacing what was mapped
    /// there (both page-aligned, `length` whole pages). Reads of those pages come from the page cache, the
    /// first write to one makes it private; the file never changes. With `populate`, the pages are read in
    /// and mapped now (MADV_POPULATE_READ; a write-populate would copy every page).
    func mapPrivate(offset: UInt64, length: Int, at address: UnsafeMutableRawPointer, populate: Bool) throws {
        let mapped = mmap(address, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off_t(offset))
        guard mapped == address else {
            throw SnapshotError.io(file: name, operation: "map \(hex(length)) bytes at offset \(hex(offset)) into guest memory",
                                   errno: errno)
        }
        if populate { _ = madvise(address, length, 22 /* MADV_POPULATE_READ */) }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw SnapshotError.io(file: name, operation: "fsync", errno: errno) }
    }

    /// Starts writing `[offset, offset+length)` back to disk without waiting (POSIX_FADV_DONTNEED writes dirty
    /// pages back asynchronously, then drops them from the cache), so that a later `sync()` has little left
    /// to do. Advisory: failure only means the final sync does all the work.
    func startWriteback(offset: UInt64, length: UInt64) {
        _ = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_DONTNEED)
    }
}

/// Directory-level operations of the writer: publishing temporary files under their final names without
/// ever replacing an existing file.
enum SnapshotDirectory {
    static func checkIsDirectory(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT { throw SnapshotError.directoryMissing(path: path) }
            throw SnapshotError.io(file: path, operation: "stat", errno: code)
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw SnapshotError.notADirectory(path: path) }
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// `link` + `unlink` rather than `rename`: `link` fails with EEXIST instead of replacing a file
    /// that appeared since the writer checked. Falls back to `rename` on filesystems without hard links.
    static func publish(temporary: String, final: String, name: String, directory: String) throws {
        if link(temporary, final) == 0 {
            unlink(temporary)
            return
        }
        let code = errno
        if code == EEXIST { throw SnapshotError.fileExists(file: name, directory: directory) }
        guard code == EPERM || code == EOPNOTSUPP || code == EXDEV || code == EMLINK else {
            throw SnapshotError.io(file: name, operation: "publish \(final)", errno: code)
        }
        if exists(final) { throw SnapshotError.fileExists(file: name, directory: directory) }
        guard rename(temporary, final) == 0 else {
            throw SnapshotError.io(file: name, operation: "rename to \(final)", errno: errno)
        }
    }

    /// Makes the new directory entries durable.
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SnapshotError.io(file: path, operation: "open directory", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SnapshotError.io(file: path, operation: "fsync directory", errno: errno) }
    }
}
