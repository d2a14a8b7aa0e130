#if canImport(Glibc)
import Glibc
#endif
import Memory

/// A file on the host that a guest needs (kernel, initramfs), read with pread so that large files go
/// straight into guest memory without a copy in between.
final class HostFile {
    let path: String
    /// "kernel" or "initramfs", for messages.
    let role: String
    let size: UInt64
    private let fd: Int32

    init(path: String, role: String) throws {
        self.path = path
        self.role = role
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BootError.cannotRead(role: role, path: path, reason: Self.reason(errno)) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let err = errno
            close(fd)
            throw BootError.cannotRead(role: role, path: path, reason: Self.reason(err))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw BootError.cannotRead(role: role, path: path, reason: Self.reason(EISDIR))
        }
        guard st.st_size > 0 else {
            close(fd)
            throw BootError.emptyFile(role: role, path: path)
        }
        self.fd = fd
        self.size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    /// Fills `buffer` from `offset`; a file shorter than asked is an error (it changed under us).
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BootError.cannotRead(role: role, path: path, reason: Self.reason(errno))
            }
            if n == 0 {
                throw BootError.cannotRead(role: role, path: path, reason: "file ended early (was it changed while loading?)")
            }
            done += n
        }
    }

    /// `count` bytes from `offset` (caller checks the range against `size`).
    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(at: offset, into: $0) }
        return out
    }

    /// Copies `count` file bytes from `offset` into guest memory at `address`.
    func copy(at offset: UInt64, count: UInt64, to address: UInt64, in memory: GuestMemory) throws {
        guard count > 0 else { return }
        let dst: UnsafeMutableRawPointer
        do { dst = try memory.pointer(at: address, count: count) } catch let error as MemoryError {
            throw BootError.memory(error)
        }
        try read(at: offset, into: UnsafeMutableRawBufferPointer(start: dst, count: Int(count)))
    }

    private static func reason(_ err: Int32) -> String { String(cString: strerror(err)) }
}
