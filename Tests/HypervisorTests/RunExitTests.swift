import Hypervisor
import XCTest

/// Real-mode guests whose every exit the test checks.
final class RunExitTests: XCTestCase {
    func testPortAndMMIOExitsThenHalt() throws {
        let guest = try RealModeGuest(code: [
            0xBA, 0xF8, 0x03,       // mov dx, 0x3f8
            0xB0, 0x41,             // mov al, 'A'
            0xEE,                   // out dx, al
            0xEC,                   // in al, dx
            0xA2, 0x00, 0x10,       // mov [0x1000], al
            0xBB, 0x00, 0x20,       // mov bx, 0x2000
            0x8E, 0xC3,             // mov es, bx
            0x26, 0xA2, 0x00, 0x00, // mov es:[0], al      → 0x20000, not backed: MMIO write
            0x26, 0xA0, 0x04, 0x00, // mov al, es:[4]      → 0x20004: MMIO read
            0xA2, 0x01, 0x10,       // mov [0x1001], al
            0xF4,                   // hlt
        ])

        guard case let .ioOut(port, data) = try guest.run() else { return XCTFail("expected ioOut") }
        XCTAssertEqual(port, 0x3F8)
        XCTAssertEqual(Array(data), [0x41])

        guard case let .ioIn(port, data) = try guest.run() else { return XCTFail("expected ioIn") }
        XCTAssertEqual(port, 0x3F8)
        XCTAssertEqual(data.count, 1)
        data[0] = 0x5A

        guard case let .mmioWrite(address, data) = try guest.run() else { return XCTFail("expected mmioWrite") }
        XCTAssertEqual(address, 0x20000)
        XCTAssertEqual(Array(data), [0x5A])
        XCTAssertEqual(guest[0x1000], 0x5A, "the ioIn byte reached the guest")

        guard case let .mmioRead(address, data) = try guest.run() else { return XCTFail("expected mmioRead") }
        XCTAssertEqual(address, 0x20004)
        XCTAssertEqual(data.count, 1)
        data[0] = 0x77

        let last = try guest.run()
        guard case .halt = last else { return XCTFail("expected halt, got \(last)") }
        XCTAssertEqual(guest[0x1001], 0x77, "the mmioRead byte reached the guest")
    }

    /// An IN's value reaches the guest's register only when KVM_RUN is entered again; state read before
    /// that (a pause for a snapshot or a migration) misses it unless the instruction is completed first.
    func testAPendingINIsCompletedWithoutRunningTheGuestFurther() throws {
        let guest = try RealModeGuest(code: [
            0xBA, 0xFD, 0x03,       // mov dx, 0x3fd
            0xEC,                   // in al, dx
            0xA2, 0x00, 0x10,       // mov [0x1000], al
            0xF4,                   // hlt
        ])
        guard case let .ioIn(port, data) = try guest.run() else { return XCTFail("expected ioIn") }
        XCTAssertEqual(port, 0x3FD)
        data[0] = 0x61
        try guest.vcpu.completePendingIO()
        let regs = try guest.vcpu.getRegs()
        XCTAssertEqual(regs.rax & 0xFF, 0x61, "the IN's value is in AL")
        XCTAssertEqual(guest[0x1000], 0, "no further guest instruction ran")
        guest.vcpu.clearImmediateExit()
        guard case .halt = try guest.run() else { return XCTFail("expected halt") }
        XCTAssertEqual(guest[0x1000], 0x61)
    }

    func testStringPortIO() throws {
        let guest = try RealModeGuest(code: [
            0xBE, 0x00, 0x01, // mov si, 0x100
            0xB9, 0x03, 0x00, // mov cx, 3
            0xBA, 0xF8, 0x03, // mov dx, 0x3f8
            0xF3, 0x6E,       // rep outsb
            0xBF, 0x00, 0x02, // mov di, 0x200
            0xB9, 0x02, 0x00, // mov cx, 2
            0xF3, 0x6C,       // rep insb
            0xF4,             // hlt
        ])
        guest.memory.advanced(by: 0x100).copyMemory(from: Array("abc".utf8), byteCount: 3)

        var written: [UInt8] = []
        var exit = try guest.run()
        while true {
            switch exit {
            case let .ioOutString(port, size, data):
                XCTAssertEqual(port, 0x3F8)
                XCTAssertEqual(size, 1)
                written += data
            case let .ioOut(port, data):
                XCTAssertEqual(port, 0x3F8)
                written += data
            default:
                break
            }
            if written.count >= 3 { break }
            exit = try guest.run()
        }
        XCTAssertEqual(written, Array("abc".utf8))

        var read = 0
        while read < 2 {
            switch try guest.run() {
            case let .ioInString(_, size, data):
                XCTAssertEqual(size, 1)
                for i in 0..<data.count { data[i] = UInt8(ascii: "x") + UInt8(read + i) }
                read += data.count
            case let .ioIn(_, data):
                data[0] = UInt8(ascii: "x") + UInt8(read)
                read += 1
            case let other:
                return XCTFail("expected ioIn, got \(other)")
            }
        }
        let last = try guest.run()
        guard case .halt = last else { return XCTFail("expected halt, got \(last)") }
        XCTAssertEqual(guest[0x200], UInt8(ascii: "x"))
        XCTAssertEqual(guest[0x201], UInt8(ascii: "y"))
    }

    func testReadOnlySlotTurnsWritesIntoMMIO() throws {
        let guest = try RealModeGuest(code: [
            0xB0, 0x99,             // mov al, 0x99
            0xBB, 0x00, 0x10,       // mov bx, 0x1000
            0x8E, 0xC3,             // mov es, bx
            0x26, 0xA2, 0x00, 0x00, // mov es:[0], al   → 0x10000 (read-only slot)
            0xF4,                   // hlt
        ])
        let rom = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { rom.deallocate() }
        try guest.vm.setUserMemoryRegion(slot: 1, guestAddress: 0x10000, size: 4096, host: rom, readOnly: true)
        guard case let .mmioWrite(address, data) = try guest.run() else { return XCTFail("expected mmioWrite") }
        XCTAssertEqual(address, 0x10000)
        XCTAssertEqual(Array(data), [0x99])
        try guest.vm.setUserMemoryRegion(slot: 1, guestAddress: 0x10000, size: 0, host: rom)
    }
}
