import Memory
import XCTest
@testable import Boot

/// Each kind of bad input gets its own error, with a message the user can act on.
final class BadInputTests: XCTestCase {
    var scratch: Scratch!
    var memory: GuestMemory!

    override func setUpWithError() throws {
        scratch = try Scratch()
        memory = try makeMemory()
    }

    private func load(_ kernel: String, initramfs: String? = nil, cmdline: String = "") throws -> EntryPoint {
        try KernelLoader.load(kernel: kernel, initramfs: initramfs, cmdline: cmdline, memory: memory, rsdp: 0)
    }

    func testMissingFile() {
        XCTAssertThrows(try load("/nonexistent/vmlinuz"),
                        BootError.cannotRead(role: "kernel", path: "/nonexistent/vmlinuz", reason: "No such file or directory"),
                        message: "kernel file /nonexistent/vmlinuz: No such file or directory")
    }

    func testDirectory() {
        let dir = scratch.directory.path
        XCTAssertThrows(try load(dir), BootError.cannotRead(role: "kernel", path: dir, reason: "Is a directory"))
    }

    func testEmptyFile() throws {
        let path = try scratch.file("empty", [])
        XCTAssertThrows(try load(path), BootError.emptyFile(role: "kernel", path: path),
                        message: "kernel file \(path) is empty")
    }

    func testRandomBytes() throws {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[0] = 0                                   // not by chance an ELF
        bytes[0x202] = 0                               // nor a bzImage
        let path = try scratch.file("random", bytes)
        XCTAssertThrows(try load(path), BootError.unknownKernelFormat(path: path),
                        message: "kernel \(path) is neither an ELF with a PVH entry note nor a bzImage")
    }

    func testTruncatedELF() throws {
        let full = SyntheticELF().bytes
        let header = try scratch.file("header-only", Array(full.prefix(40)))
        XCTAssertThrows(try load(header), BootError.truncatedELF(path: header, detail: "40 bytes, shorter than an ELF header"))
        // Whole headers, but the segment's bytes are cut off.
        let cut = try scratch.file("cut", Array(full.prefix(0x420)))
        XCTAssertThrowsError(try load(cut)) { error in
            guard case .truncatedELF(let path, _)? = error as? BootError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, cut)
            XCTAssertTrue("\(error)".hasPrefix("kernel \(cut) is a truncated ELF ("), "\(error)")
        }
    }

    func testELFWithoutPVHNote() throws {
        var elf = SyntheticELF()
        elf.pvhNote = false
        let path = try scratch.file("vmlinux-nopvh", elf.bytes)
        XCTAssertThrows(try load(path), BootError.noPVHEntryNote(path: path))
        XCTAssertTrue("\(BootError.noPVHEntryNote(path: path))".contains("CONFIG_PVH=y"))
    }

    func testForeignELF() throws {
        var elf = SyntheticELF()
        elf.machine = 183                               // AArch64
        let path = try scratch.file("arm64", elf.bytes)
        XCTAssertThrows(try load(path), BootError.unsupportedELF(path: path,
                                                                 detail: "built for machine type 183, not x86-64 or i386"))
    }

    func testKernelOutsideRAM() throws {
        var elf = SyntheticELF()
        elf.loadAddress = 0x2000_0000                   // 512 MiB, beyond a 256 MiB guest
        elf.entry = 0x2000_0000
        let path = try scratch.file("high", elf.bytes)
        XCTAssertThrowsError(try load(path)) { error in
            guard case .kernelOutsideRAM? = error as? BootError else { return XCTFail("\(error)") }
        }
        elf.loadAddress = 0x8000                        // over the boot data
        elf.entry = 0x8000
        let low = try scratch.file("low", elf.bytes)
        XCTAssertThrows(try load(low), BootError.kernelBelowHighRAM(path: low, address: 0x8000))
    }

    func testBzImageTooOldOrNot64Bit() throws {
        var image = SyntheticBzImage()
        image.version = 0x0206
        let old = try scratch.file("old", image.bytes)
        XCTAssertThrows(try load(old), BootError.bzImageTooOld(path: old, version: 0x0206),
                        message: "kernel \(old) speaks boot protocol 2.06; the 64-bit entry needs 2.12 or later (Linux 3.8+)")
        image = SyntheticBzImage()
        image.xloadflags = 0
        let i386 = try scratch.file("i386", image.bytes)
        XCTAssertThrows(try load(i386), BootError.bzImageNot64Bit(path: i386))
        let truncated = try scratch.file("trunc", Array(SyntheticBzImage().bytes.prefix(0x300)))
        XCTAssertThrows(try load(truncated), BootError.truncatedBzImage(path: truncated))
    }

    func testCmdlineTooLong() throws {
        let kernel = try scratch.file("k", SyntheticELF().bytes)
        let long = String(repeating: "x", count: Int(GuestLayout.cmdlineMaxSize))
        XCTAssertThrows(try load(kernel, cmdline: long),
                        BootError.cmdlineTooLong(length: long.utf8.count, limit: Int(GuestLayout.cmdlineMaxSize) - 1,
                                                 kernelLimit: false))
        XCTAssertNoThrow(try load(kernel, cmdline: String(long.dropLast())))
    }

    func testInitramfsTooBig() throws {
        let kernel = try scratch.file("k", SyntheticELF().bytes)
        let big = try scratch.sparseFile("huge.img", size: 300 << 20)
        XCTAssertThrowsError(try load(kernel, initramfs: big)) { error in
            guard case let .initramfsTooBig(path, size, _, end)? = error as? BootError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, big)
            XCTAssertEqual(size, 300 << 20)
            XCTAssertEqual(end, 256 << 20)
            XCTAssertTrue("\(error)".hasPrefix("initramfs \(big) (300 MiB) does not fit below 0x10000000"), "\(error)")
        }
        // Fits in RAM, but not above the kernel's decompression room.
        let image = SyntheticBzImage()
        let bz = try scratch.file("bz", image.bytes)
        let tooHigh = try scratch.sparseFile("250m.img", size: 250 << 20)
        XCTAssertThrowsError(try load(bz, initramfs: tooHigh)) { error in
            guard case .initramfsTooBig? = error as? BootError else { return XCTFail("\(error)") }
        }
    }

    func testMissingInitramfs() throws {
        let kernel = try scratch.file("k", SyntheticELF().bytes)
        XCTAssertThrows(try load(kernel, initramfs: "/nonexistent/initrd"),
                        BootError.cannotRead(role: "initramfs", path: "/nonexistent/initrd", reason: "No such file or directory"),
                        message: "initramfs file /nonexistent/initrd: No such file or directory")
    }
}

extension BadInputTests {
    /// Header values chosen to overflow address arithmetic must give errors, not traps.
    func testHostileHeaders() throws {
        var image = SyntheticBzImage()
        image.prefAddress = .max - 0x100
        let bz = try scratch.file("hostile-bz", image.bytes)
        XCTAssertThrowsError(try load(bz)) { error in
            guard case .kernelOutsideRAM? = error as? BootError else { return XCTFail("\(error)") }
        }
        var elf = SyntheticELF()
        elf.loadAddress = .max - 0x10
        elf.bss = 0x1000
        let e = try scratch.file("hostile-elf", elf.bytes)
        XCTAssertThrowsError(try load(e)) { error in
            guard case .kernelOutsideRAM? = error as? BootError else { return XCTFail("\(error)") }
        }
    }
}
