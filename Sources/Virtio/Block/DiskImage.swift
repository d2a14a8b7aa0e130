import CKVM
import Foundation
import Glibc

/// Why one I/O on a disk image failed.
enum DiskIOError: Error, Equatable {
    /// The host failed the operation (errno).
    case system(Int32)
    /// The image ended before the transfer did (it shrank under the VM).
    case endOfImage
    /// The filesystem cannot do this fallocate mode.
    case unsupported
}

/// A raw disk image — a regular file or a block device — and the synchronous I/O the I/O threads do
/// on it, several at once, straight between the image and guest memory through iovecs.
final class DiskImage: BlockBackend, @unchecked Sendable {
    let path: String
    /// The size in bytes when opened.
    let size: UInt64
    /// The alignment O_DIRECT needs of memory, offsets and lengths: 512, or 4096 on 4K-sector
    /// storage. 512 without O_DIRECT.
    let blockSize: Int
    /// `st_dev`, `st_rdev` and `st_ino` run together: the serial kvmtool and CH derive for a disk.
    let identity: String
    private let fd: Int32
    private let direct: Bool
    /// Aligned memory for O_DIRECT transfers whose guest buffers are not aligned, kept for reuse: one
    /// per transfer staged at the same time, allocated on first use.
    private var spareStaging: [UnsafeMutableRawBufferPointer] = []
    private let stagingLock = NSLock()
    private static let stagingSize = 1 << 20
    /// Linux's limit on vectors per preadv/pwritev (UIO_MAXIOV).
    private static let maxVectors = 1024

    init(path: String, readonly: Bool, direct: Bool) throws(BlockDeviceError) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            throw e == ENOENT ? .imageMissing(path: path) : .openFailed(path: path, errno: e)
        }
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else { throw .notADisk(path: path) }
        let fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? CKVM_O_DIRECT : 0))
        guard fd >= 0 else { throw Self.openError(path: path, errno: errno, readonly: readonly, direct: direct) }
        let end = lseek(fd, 0, SEEK_END)
        var alignment = 512
        do throws(BlockDeviceError) {
            guard end >= 0 else { throw .openFailed(path: path, errno: errno) }
            if direct { alignment = try Self.directAlignment(fd: fd, path: path) }
        } catch {
            close(fd)
            throw error
        }
        self.path = path
        self.fd = fd
        self.direct = direct
        size = UInt64(end)
        blockSize = alignment
        identity = "\(st.st_dev)\(st.st_rdev)\(st.st_ino)"
    }

    deinit {
        close(fd)
        for buffer in spareStaging { buffer.deallocate() }
    }

    private static func openError(path: String, errno e: Int32, readonly: Bool, direct: Bool) -> BlockDeviceError {
        if e == EINVAL && direct { return .directUnsupported(path: path, errno: e) }
        let denied = [EACCES, EPERM, EROFS, ETXTBSY].contains(e)
        if denied && !readonly && access(path, R_OK) == 0 { return .notWritable(path: path, errno: e) }
        return denied ? .notReadable(path: path, errno: e) : .openFailed(path: path, errno: e)
    }

    /// The smallest alignment O_DIRECT accepts here: one aligned read at offset 0 of 512, then 4096 bytes.
    private static func directAlignment(fd: Int32, path: String) throws(BlockDeviceError) -> Int {
        let probe = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { probe.deallocate() }
        for alignment in [512, 4096] {
            if pread(fd, probe.baseAddress, alignment, 0) >= 0 { return alignment }
            let e = errno
            guard e == EINVAL else { throw .notReadable(path: path, errno: e) }
        }
        throw .directUnsupported(path: path, errno: EINVAL)
    }

    /// Fills `iovecs` from the image, starting at byte `offset`.
    func read(into iovecs: [iovec], at offset: UInt64) throws(DiskIOError) {
        if needsStaging(iovecs) { try staged(iovecs, at: offset, writing: false) } else { try transfer(iovecs, at: offset, preadv) }
    }

    /// Writes `iovecs` to the image, starting at byte `offset`.
    func write(from iovecs: [iovec], at offset: UInt64) throws(DiskIOError) {
        if needsStaging(iovecs) { try staged(iovecs, at: offset, writing: true) } else { try transfer(iovecs, at: offset, pwritev) }
    }

    /// Makes completed writes durable.
    func flush() throws(DiskIOError) {
        guard fdatasync(fd) == 0 else { throw .system(errno) }
    }

    /// Deallocates a byte range; it reads as zeros afterwards.
    func discard(offset: UInt64, length: UInt64) throws(DiskIOError) {
        try allocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset: offset, length: length)
    }

    /// Zeroes a byte range, deallocating it when `unmap` allows (or when the filesystem cannot zero a
    /// range in place, as tmpfs: a hole reads as zeros too).
    func writeZeroes(offset: UInt64, length: UInt64, unmap: Bool) throws(DiskIOError) {
        if !unmap {
            do throws(DiskIOError) {
                return try allocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset: offset, length: length)
            } catch .unsupported {}
        }
        try discard(offset: offset, length: length)
    }

    private func allocate(_ mode: Int32, offset: UInt64, length: UInt64) throws(DiskIOError) {
        guard ckvm_fallocate(fd, mode, Int64(offset), Int64(length)) != 0 else { return }
        let e = errno
        throw e == EOPNOTSUPP ? .unsupported : .system(e)
    }

    private typealias VectorIO = (Int32, UnsafePointer<iovec>?, Int32, off_t) -> Int

    /// Repeats preadv/pwritev until every byte moved: the kernel may stop short (a signal, its 2 GiB
    /// per-call cap) and takes at most `maxVectors` vectors per call.
    private func transfer(_ iovecs: [iovec], at offset: UInt64, _ io: VectorIO) throws(DiskIOError) {
        var vectors = iovecs.filter { $0.iov_len > 0 }
        var first = 0
        var position = off_t(offset)
        while first < vectors.count {
            let count = Int32(min(vectors.count - first, Self.maxVectors))
            let n = vectors.withUnsafeBufferPointer { io(fd, $0.baseAddress! + first, count, position) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                throw .system(e)
            }
            if n == 0 { throw .endOfImage }
            position += off_t(n)
            var moved = n
            while moved > 0 {
                let length = vectors[first].iov_len
                if moved >= length {
                    moved -= length
                    first += 1
                } else {
                    vectors[first].iov_base = vectors[first].iov_base! + moved
                    vectors[first].iov_len = length - moved
                    moved = 0
                }
            }
        }
    }

    private func needsStaging(_ iovecs: [iovec]) -> Bool {
        direct && iovecs.contains { Int(bitPattern: $0.iov_base) % blockSize != 0 || $0.iov_len % blockSize != 0 }
    }

    /// O_DIRECT with unaligned guest buffers: moves the data through aligned staging memory, a chunk at a time.
    private func staged(_ iovecs: [iovec], at offset: UInt64, writing: Bool) throws(DiskIOError) {
        let buffer = stagingLock.withLock { spareStaging.popLast() } ?? .allocate(byteCount: Self.stagingSize, alignment: 4096)
        defer { stagingLock.withLock { spareStaging.append(buffer) } }
        let total = iovecs.reduce(0) { $0 + $1.iov_len }
        var done = 0
        while done < total {
            let n = min(buffer.count, total - done)
            let chunk = [iovec(iov_base: buffer.baseAddress, iov_len: n)]
            let position = offset + UInt64(done)
            if writing {
                Self.forEachPiece(of: iovecs, skip: done, count: n) { piece, at in
                    (buffer.baseAddress! + at).copyMemory(from: piece.baseAddress!, byteCount: piece.count)
                }
                try transfer(chunk, at: position, pwritev)
            } else {
                try transfer(chunk, at: position, preadv)
                Self.forEachPiece(of: iovecs, skip: done, count: n) { piece, at in
                    piece.baseAddress!.copyMemory(from: buffer.baseAddress! + at, byteCount: piece.count)
                }
            }
            done += n
        }
    }

    /// Calls `body` for each piece of `iovecs` within bytes [skip, skip+count), with the piece's
    /// offset from `skip`.
    private static func forEachPiece(of iovecs: [iovec], skip: Int, count: Int,
                                     _ body: (UnsafeMutableRawBufferPointer, Int) -> Void) {
        var toSkip = skip, done = 0
        for vector in iovecs where done < count {
            if toSkip >= vector.iov_len { toSkip -= vector.iov_len; continue }
            let n = min(vector.iov_len - toSkip, count - done)
            body(UnsafeMutableRawBufferPointer(start: vector.iov_base! + toSkip, count: n), done)
            done += n
            toSkip = 0
        }
    }
}
