/// Just enough of an ELF executable to load it: its program headers and its notes.
///
/// Both classes are read: Linux's vmlinux is ELF64, small test guests are often ELF32. Only
/// little-endian x86 executables are accepted; anything else gets an error naming what it is.
struct ELFImage {
    struct Segment: Equatable {
        var type: UInt32
        var offset: UInt64
        var physicalAddress: UInt64
        var fileSize: UInt64
        var memorySize: UInt64
        var align: UInt64
    }

    struct Note: Equatable {
        var name: String
        var type: UInt32
        var desc: [UInt8]
    }

    static let ptLoad: UInt32 = 1
    static let ptNote: UInt32 = 4
    static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]

    var is64Bit: Bool
    var entry: UInt64
    var segments: [Segment]

    static func hasMagic(_ header: [UInt8]) -> Bool { header.count >= 4 && Array(header[0..<4]) == magic }

    init(file: HostFile) throws {
        let path = file.path
        guard file.size >= 52 else {
            throw BootError.truncatedELF(path: path, detail: "\(file.size) bytes, shorter than an ELF header")
        }
        let ident = try file.bytes(at: 0, count: 16)
        switch ident[4] {
        case 1: is64Bit = false
        case 2: is64Bit = true
        default: throw BootError.unsupportedELF(path: path, detail: "unknown ELF class \(ident[4])")
        }
        guard ident[5] == 1 else {
            throw BootError.unsupportedELF(path: path, detail: "big-endian, not an x86 image")
        }
        let headerSize = is64Bit ? 64 : 52
        guard file.size >= UInt64(headerSize) else {
            throw BootError.truncatedELF(path: path, detail: "\(file.size) bytes, shorter than an ELF64 header")
        }
        let h = try file.bytes(at: 0, count: headerSize)
        let type = Bytes.read(UInt16.self, from: h, at: 16)
        let machine = Bytes.read(UInt16.self, from: h, at: 18)
        guard machine == 62 || machine == 3 else {
            throw BootError.unsupportedELF(path: path, detail: "built for machine type \(machine), not x86-64 or i386")
        }
        guard type == 2 else {
            throw BootError.unsupportedELF(path: path, detail: "ELF type \(type) is not an executable (ET_EXEC)")
        }
        let phoff, phentsize, phnum: UInt64
        if is64Bit {
            entry = Bytes.read(UInt64.self, from: h, at: 24)
            phoff = Bytes.read(UInt64.self, from: h, at: 32)
            phentsize = UInt64(Bytes.read(UInt16.self, from: h, at: 54))
            phnum = UInt64(Bytes.read(UInt16.self, from: h, at: 56))
        } else {
            entry = UInt64(Bytes.read(UInt32.self, from: h, at: 24))
            phoff = UInt64(Bytes.read(UInt32.self, from: h, at: 28))
            phentsize = UInt64(Bytes.read(UInt16.self, from: h, at: 42))
            phnum = UInt64(Bytes.read(UInt16.self, from: h, at: 44))
        }
        let expectedEntrySize: UInt64 = is64Bit ? 56 : 32
        guard phnum > 0 else { throw BootError.unsupportedELF(path: path, detail: "no program headers") }
        guard phentsize == expectedEntrySize else {
            throw BootError.unsupportedELF(path: path, detail: "program header size \(phentsize), expected \(expectedEntrySize)")
        }
        guard phoff <= file.size, phnum * phentsize <= file.size - phoff else {
            throw BootError.truncatedELF(path: path, detail: "program headers at \(hex(phoff)) run past the end of the file")
        }
        let table = try file.bytes(at: phoff, count: Int(phnum * phentsize))
        let wide = is64Bit
        segments = (0..<Int(phnum)).map { i in
            let o = i * Int(phentsize)
            if wide {
                return Segment(type: Bytes.read(UInt32.self, from: table, at: o),
                               offset: Bytes.read(UInt64.self, from: table, at: o + 8),
                               physicalAddress: Bytes.read(UInt64.self, from: table, at: o + 24),
                               fileSize: Bytes.read(UInt64.self, from: table, at: o + 32),
                               memorySize: Bytes.read(UInt64.self, from: table, at: o + 40),
                               align: Bytes.read(UInt64.self, from: table, at: o + 48))
            }
            return Segment(type: Bytes.read(UInt32.self, from: table, at: o),
                           offset: UInt64(Bytes.read(UInt32.self, from: table, at: o + 4)),
                           physicalAddress: UInt64(Bytes.read(UInt32.self, from: table, at: o + 12)),
                           fileSize: UInt64(Bytes.read(UInt32.self, from: table, at: o + 16)),
                           memorySize: UInt64(Bytes.read(UInt32.self, from: table, at: o + 20)),
                           align: UInt64(Bytes.read(UInt32.self, from: table, at: o + 28)))
        }
        for segment in segments where segment.type == Self.ptLoad || segment.type == Self.ptNote {
            guard segment.offset <= file.size, segment.fileSize <= file.size - segment.offset else {
                throw BootError.truncatedELF(
                    path: path,
                    detail: "a segment's bytes at \(hex(segment.offset))+\(hex(segment.fileSize)) run past the end of the "
                        + "\(file.size)-byte file")
            }
        }
    }

    /// The loadable segments that occupy memory.
    var loadSegments: [Segment] { segments.filter { $0.type == Self.ptLoad && $0.memorySize > 0 } }

    /// All notes of all PT_NOTE segments. Notes are 4-byte aligned (8 when the segment says so).
    func notes(in file: HostFile) throws -> [Note] {
        var notes: [Note] = []
        for segment in segments where segment.type == Self.ptNote && segment.fileSize > 0 {
            let data = try file.bytes(at: segment.offset, count: Int(segment.fileSize))
            let align = segment.align == 8 ? 8 : 4
            func padded(_ n: Int) -> Int { (n + align - 1) & ~(align - 1) }
            var o = 0
            while o + 12 <= data.count {
                let nameSize = Int(Bytes.read(UInt32.self, from: data, at: o))
                let descSize = Int(Bytes.read(UInt32.self, from: data, at: o + 4))
                let type = Bytes.read(UInt32.self, from: data, at: o + 8)
                let nameStart = o + 12
                let descStart = nameStart + padded(nameSize)
                guard nameSize <= data.count, descSize <= data.count, descStart + descSize <= data.count else {
                    throw BootError.truncatedELF(path: file.path, detail: "a note runs past the end of its segment")
                }
                let name = String(decoding: data[nameStart..<nameStart + nameSize].prefix { $0 != 0 }, as: UTF8.self)
                notes.append(Note(name: name, type: type, desc: Array(data[descStart..<descStart + descSize])))
                o = descStart + padded(descSize)
            }
        }
        return notes
    }
}
