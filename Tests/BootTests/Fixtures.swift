import Foundation
import Memory
import XCTest

/// Scratch files and synthetic kernels for the boot tests.
final class Scratch {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("boot-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Writes `bytes` to a new file and returns its path.
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// A sparse file of `size` bytes (for "too big" cases without writing them).
    func sparseFile(_ name: String, size: UInt64) throws -> String {
        let url = directory.appendingPathComponent(name)
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: size)
        try handle.close()
        return url.path
    }
}

/// Little-endian byte building for fixtures.
struct LE {
    var bytes: [UInt8]
    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        if offset + MemoryLayout<T>.size > bytes.count {
            bytes += [UInt8](repeating: 0, count: offset + MemoryLayout<T>.size - bytes.count)
        }
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    mutating func put(_ data: [UInt8], at offset: Int) {
        if offset + data.count > bytes.count { bytes += [UInt8](repeating: 0, count: offset + data.count - bytes.count) }
        bytes.replaceSubrange(offset..<offset + data.count, with: data)
    }

    static func read<T: FixedWidthInteger>(_ type: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(bytes[offset + i]) << (8 * i) }
        return v
    }
}

/// A synthetic PVH kernel: one PT_LOAD (code + bss) and one PT_NOTE holding, in order, a GNU note and
/// (unless `pvhNote` is false) the Xen PHYS32_ENTRY note.
struct SyntheticELF {
    var is64Bit = true
    var loadAddress: UInt64 = 0x20_0000
    var entry: UInt64 = 0x20_0010
    var code: [UInt8] = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
    var bss: UInt64 = 0x3000
    var pvhNote = true
    /// 8 as Linux does on x86-64, or 4.
    var entryNoteSize = 8
    var machine: UInt16 = 62

    func notes() -> [UInt8] {
        var out: [UInt8] = []
        func note(_ name: String, _ type: UInt32, _ desc: [UInt8]) {
            var n = LE(count: 12)
            let nameBytes = Array(name.utf8) + [0]
            n.put(UInt32(nameBytes.count), at: 0)
            n.put(UInt32(desc.count), at: 4)
            n.put(type, at: 8)
            var body = nameBytes
            while body.count % 4 != 0 { body.append(0) }
            var d = desc
            while d.count % 4 != 0 { d.append(0) }
            out += n.bytes + body + d
        }
        note("GNU", 3, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        note("Xen", 6, Array("linux".utf8) + [0])     // XEN_ELFNOTE_GUEST_OS: a decoy of another type
        if pvhNote {
            var d = LE(count: entryNoteSize)
            if entryNoteSize == 8 { d.put(entry, at: 0) } else { d.put(UInt32(entry), at: 0) }
            note("Xen", 18, d.bytes)
        }
        return out
    }

    var bytes: [UInt8] {
        let notes = notes()
        let ehsize = is64Bit ? 64 : 52, phentsize = is64Bit ? 56 : 32
        let noteOffset = ehsize + 2 * phentsize
        let codeOffset = 0x400
        var f = LE(count: codeOffset)
        f.put([0x7F, 0x45, 0x4C, 0x46, is64Bit ? 2 : 1, 1, 1, 0], at: 0)
        f.put(UInt16(2), at: 16)                       // ET_EXEC
        f.put(machine, at: 18)
        f.put(UInt32(1), at: 20)
        if is64Bit {
            f.put(entry, at: 24)
            f.put(UInt64(ehsize), at: 32)              // e_phoff
            f.put(UInt16(ehsize), at: 52)
            f.put(UInt16(phentsize), at: 54)
            f.put(UInt16(2), at: 56)
            // PT_LOAD
            f.put(UInt32(1), at: 64); f.put(UInt32(7), at: 68)
            f.put(UInt64(codeOffset), at: 72); f.put(loadAddress, at: 80); f.put(loadAddress, at: 88)
            f.put(UInt64(code.count), at: 96); f.put(UInt64(code.count) + bss, at: 104); f.put(UInt64(0x1000), at: 112)
            // PT_NOTE
            f.put(UInt32(4), at: 120); f.put(UInt32(4), at: 124)
            f.put(UInt64(noteOffset), at: 128); f.put(UInt64(0), at: 136); f.put(UInt64(0), at: 144)
            f.put(UInt64(notes.count), at: 152); f.put(UInt64(notes.count), at: 160); f.put(UInt64(4), at: 168)
        } else {
            f.put(UInt32(entry), at: 24)
            f.put(UInt32(ehsize), at: 28)
            f.put(UInt16(ehsize), at: 40)
            f.put(UInt16(phentsize), at: 42)
            f.put(UInt16(2), at: 44)
            // PT_LOAD
            f.put(UInt32(1), at: 52); f.put(UInt32(codeOffset), at: 56); f.put(UInt32(loadAddress), at: 60)
            f.put(UInt32(loadAddress), at: 64); f.put(UInt32(code.count), at: 68)
            f.put(UInt32(UInt64(code.count) + bss), at: 72); f.put(UInt32(7), at: 76); f.put(UInt32(0x1000), at: 80)
            // PT_NOTE
            f.put(UInt32(4), at: 84); f.put(UInt32(noteOffset), at: 88); f.put(UInt32(0), at: 92)
            f.put(UInt32(0), at: 96); f.put(UInt32(notes.count), at: 100); f.put(UInt32(notes.count), at: 104)
            f.put(UInt32(4), at: 108); f.put(UInt32(4), at: 112)
        }
        f.put(notes, at: noteOffset)
        precondition(noteOffset + notes.count <= codeOffset)
        f.put(code, at: codeOffset)
        return f.bytes
    }
}

/// A synthetic bzImage: real-mode setup (1 + `setupSects` sectors) with a protocol 2.15 header, then a
/// recognisable "protected-mode kernel".
struct SyntheticBzImage {
    var setupSects: UInt8 = 3
    var version: UInt16 = 0x020F
    var xloadflags: UInt16 = 0x7F
    var prefAddress: UInt64 = 0x100_0000
    var initSize: UInt32 = 0x80_0000
    var initrdAddrMax: UInt32 = 0x7FFF_FFFF
    var cmdlineSize: UInt32 = 2047
    var payload: [UInt8] = (0..<0x3000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }

    var setupSize: Int { (Int(setupSects) + 1) * 512 }

    var bytes: [UInt8] {
        var f = LE(count: setupSize)
        for i in 0..<setupSize { f.bytes[i] = 0xCC }   // real-mode code: must not leak into the zero page
        for i in 0x1F1..<0x26C { f.bytes[i] = 0 }
        f.bytes[0x1EF] = 0xFF                         // sentinel, as in real images
        f.bytes[0x1F1] = setupSects
        f.put(UInt16(0xFFFF), at: 0x1FA)              // vid_mode
        f.put(UInt16(0xAA55), at: 0x1FE)
        f.put([0xEB, 0x6A], at: 0x200)                // jump: header ends at 0x26C
        f.put(Array("HdrS".utf8), at: 0x202)
        f.put(version, at: 0x206)
        f.bytes[0x211] = 0x01                         // LOADED_HIGH
        f.put(UInt32(0x10_0000), at: 0x214)           // code32_start
        f.put(initrdAddrMax, at: 0x22C)
        f.put(UInt32(0x20_0000), at: 0x230)
        f.bytes[0x234] = 1
        f.bytes[0x235] = 0x15
        f.put(xloadflags, at: 0x236)
        f.put(cmdlineSize, at: 0x238)
        f.put(prefAddress, at: 0x258)
        f.put(initSize, at: 0x260)
        return f.bytes + payload
    }
}

func makeMemory(_ size: UInt64 = 256 << 20) throws -> GuestMemory { try GuestMemory(size: size) }

func readCString(_ memory: GuestMemory, at address: UInt64, max: Int = 4096) throws -> String {
    let bytes = try memory.read(at: address, count: max)
    return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
}

/// Asserts that `body` throws exactly `expected`, and that its message is `message` (when given).
func XCTAssertThrows<T, E: Error & Equatable>(_ body: @autoclosure () throws -> T, _ expected: E,
                                              message: String? = nil, file: StaticString = #filePath,
                                              line: UInt = #line) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        XCTAssertEqual(error as? E, expected, file: file, line: line)
        if let message { XCTAssertEqual("\(error)", message, file: file, line: line) }
    }
}
