import Memory

/// The request types this device serves (virtio 1.2 §5.2.6); others are answered VIRTIO_BLK_S_UNSUPP.
enum BlockRequestType: UInt32 {
    case read = 0, write = 1, flush = 4, getID = 8, discard = 11, writeZeroes = 13
}

/// Why a request failed, in the terms of its status byte.
enum BlockRequestError: Error {
    case ioError, unsupported

    /// VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP.
    var status: UInt8 { self == .ioError ? 1 : 2 }
}

/// One request as the driver lays it out: a 16-byte header (type, reserved, sector) at the start of
/// the device-readable buffers, then the data, and the status as the last device-writable byte.
struct BlockRequest {
    static let headerSize = 16
    static let sectorSize = 512
    static let statusOK: UInt8 = 0

    let chain: DescriptorChain
    /// The header's type and sector; nil when the readable part is shorter than a header.
    let header: (type: UInt32, sector: UInt64)?
    let statusAddress: UInt64

    /// nil when the chain has no device-writable byte: no status could be reported.
    init?(_ chain: DescriptorChain, memory: GuestMemory) {
        guard let last = chain.writable.last else { return nil }
        self.chain = chain
        statusAddress = last.address + UInt64(last.length) - 1
        let bytes = (try? memory.gather(chain.readable, limit: Self.headerSize)) ?? []
        header = bytes.count < Self.headerSize ? nil : bytes.withUnsafeBytes {
            (UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)), UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    /// The header's type when it is one this device serves.
    var type: BlockRequestType? { header.flatMap { BlockRequestType(rawValue: $0.type) } }

    /// Bytes the driver sends after the header (write, discard, write zeroes).
    var outLength: Int { max(0, chain.readableLength - Self.headerSize) }
    /// Bytes the device may write before the status byte (read, get ID).
    var inLength: Int { chain.writableLength - 1 }

    /// One range of a DISCARD or WRITE_ZEROES request.
    struct Segment {
        static let size = 16
        /// WRITE_ZEROES may deallocate the range.
        static let unmapFlag: UInt32 = 1
        let sector: UInt64
        let sectors: UInt32
        let flags: UInt32
    }

    /// The ranges a DISCARD or WRITE_ZEROES request carries after its header.
    func segments(memory: GuestMemory) throws(BlockRequestError) -> [Segment] {
        let count = outLength / Segment.size
        guard outLength % Segment.size == 0, (1...Int(BlockConfigSpace.maxDiscardSegments)).contains(count),
              let bytes = try? memory.gather(chain.readable, skip: Self.headerSize) else { throw .ioError }
        return bytes.withUnsafeBytes { raw in
            (0..<count).map { k in
                Segment(sector: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16 * k, as: UInt64.self)),
                        sectors: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 16 * k + 8, as: UInt32.self)),
                        flags: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 16 * k + 12, as: UInt32.self)))
            }
        }
    }
}
