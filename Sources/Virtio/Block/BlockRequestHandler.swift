import Glibc
import Memory

/// Executes virtio-blk requests against the image, each to completion; the I/O threads run several at once.
final class BlockRequestHandler: @unchecked Sendable {
    static let serialLength = 20

    private let disk: any BlockBackend
    private let readonly: Bool
    /// The GET_ID answer, NUL-padded to 20 bytes.
    private let serial: [UInt8]
    let counters = BlockCounters()
    /// The image size in 512-byte sectors (a partial last sector is not exposed, as in CH).
    let capacity: UInt64

    /// `size` is the image's in bytes.
    init(disk: any BlockBackend, size: UInt64, readonly: Bool, serial: String) {
        self.disk = disk
        self.readonly = readonly
        let id = Array(serial.utf8.prefix(Self.serialLength))
        self.serial = id + [UInt8](repeating: 0, count: Self.serialLength - id.count)
        capacity = size / UInt64(BlockRequest.sectorSize)
    }

    /// Executes `request` and writes its status; returns the used length.
    func serve(_ request: BlockRequest, memory: GuestMemory) -> UInt32 {
        let written: Int, status: UInt8
        do throws(BlockRequestError) {
            written = try execute(request, memory: memory)
            status = BlockRequest.statusOK
        } catch {
            written = 0
            status = error.status
        }
        try? memory.store(status, at: request.statusAddress)
        memory.markDirty(request.statusAddress, count: 1)
        return UInt32(written + 1)
    }

    /// Returns the bytes written into the data buffers.
    private func execute(_ request: BlockRequest, memory: GuestMemory) throws(BlockRequestError) -> Int {
        guard let (rawType, sector) = request.header else { throw .ioError }
        guard let type = BlockRequestType(rawValue: rawType) else { throw .unsupported }
        switch type {
        case .read:
            let length = request.inLength
            let offset = try byteOffset(sector, bytes: length)
            let buffers = request.chain.writable
            let vectors = try iovecs(buffers, skip: 0, limit: length, memory: memory)
            defer { memory.markDirty(buffers) }
            try perform { () throws(DiskIOError) in try disk.read(into: vectors, at: offset) }
            counters.countRead(length)
            return length
        case .write:
            guard !readonly else { throw .ioError }
            let length = request.outLength
            let offset = try byteOffset(sector, bytes: length)
            let vectors = try iovecs(request.chain.readable, skip: BlockRequest.headerSize, limit: length, memory: memory)
            try perform { () throws(DiskIOError) in try disk.write(from: vectors, at: offset) }
            counters.countWrite(length)
            return 0
        case .flush:
            try perform { () throws(DiskIOError) in try disk.flush() }
            return 0
        case .getID:
            let id = Array(serial.prefix(request.inLength))
            guard (try? memory.scatter(id, into: request.chain.writable)) != nil else { throw .ioError }
            return id.count
        case .discard, .writeZeroes:
            // Not offered on a read-only disk.
            guard !readonly else { throw .unsupported }
            let zeroes = type == .writeZeroes
            let knownFlags = zeroes ? BlockRequest.Segment.unmapFlag : 0
            for segment in try request.segments(memory: memory) {
                guard segment.flags & ~knownFlags == 0 else { throw .unsupported }
                guard segment.sectors > 0 else { continue }
                let length = UInt64(segment.sectors) * UInt64(BlockRequest.sectorSize)
                let offset = try byteOffset(segment.sector, bytes: Int(length))
                let unmap = segment.flags & BlockRequest.Segment.unmapFlag != 0
                try perform { () throws(DiskIOError) in
                    if zeroes {
                        try disk.writeZeroes(offset: offset, length: length, unmap: unmap)
                    } else {
                        try disk.discard(offset: offset, length: length)
                    }
                }
            }
            return 0
        }
    }

    /// The byte offset of `sector`, once `bytes` from there are known to be whole sectors inside the image.
    private func byteOffset(_ sector: UInt64, bytes: Int) throws(BlockRequestError) -> UInt64 {
        let size = BlockRequest.sectorSize
        guard bytes % size == 0, sector <= capacity, UInt64(bytes / size) <= capacity - sector else { throw .ioError }
        return sector * UInt64(size)
    }

    private func iovecs(_ buffers: [GuestBuffer], skip: Int, limit: Int, memory: GuestMemory) throws(BlockRequestError) -> [iovec] {
        guard let vectors = try? memory.iovecs(buffers, skip: skip, limit: limit) else { throw .ioError }
        return vectors
    }

    /// Runs an operation on the image; a filesystem that cannot do it answers UNSUPP, any other failure IOERR.
    private func perform(_ operation: () throws(DiskIOError) -> Void) throws(BlockRequestError) {
        do throws(DiskIOError) { try operation() } catch { throw error == .unsupported ? .unsupported : .ioError }
    }
}
