import Hypervisor
import XCTest

final class EventFDTests: XCTestCase {
    func testIoeventfdSignalsWithoutExit() throws {
        let guest = try RealModeGuest(code: [
            0xBA, 0x00, 0x05, // mov dx, 0x500
            0xB0, 0x41,       // mov al, 0x41
            0xEE,             // out dx, al     (no datamatch: exits to userspace)
            0xB0, 0x42,       // mov al, 0x42
            0xEE,             // out dx, al     (matches: only the eventfd sees it)
            0xF4,             // hlt
        ])
        let event = try EventFD()
        try guest.vm.registerIoeventfd(eventFD: event.fd, address: 0x500, length: 1, isPIO: true, datamatch: 0x42)

        guard case let .ioOut(port, data) = try guest.run() else { return XCTFail("expected ioOut of 0x41") }
        XCTAssertEqual(port, 0x500)
        XCTAssertEqual(Array(data), [0x41])
        XCTAssertNil(try event.read(), "a non-matching write must not signal")

        let exit = try guest.run()
        guard case .halt = exit else { return XCTFail("expected halt with no ioOut, got \(exit)") }
        XCTAssertEqual(try event.read(), 1)

        try guest.vm.unregisterIoeventfd(eventFD: event.fd, address: 0x500, length: 1, isPIO: true, datamatch: 0x42)
        XCTAssertThrowsError(try guest.vm.registerIoeventfd(eventFD: event.fd, address: 0x500, length: 3, isPIO: true))
    }

    func testIrqfdRaisesThePICLine() throws {
        let guest = try RealModeGuest(code: [0xF4], irqchip: true)
        let event = try EventFD()
        try guest.vm.registerIrqfd(eventFD: event.fd, gsi: 4)
        try event.write()
        // irqfd injection runs on a kernel workqueue: poll the PIC's request register briefly.
        var irr: UInt8 = 0
        for _ in 0..<200 where irr & 0x10 == 0 {
            irr = try guest.vm.getIRQChip(0).chip.pic.irr
            if irr & 0x10 == 0 { usleep(1000) }
        }
        XCTAssertEqual(irr & 0x10, 0x10, "GSI 4 pending in the master PIC")
        try guest.vm.unregisterIrqfd(eventFD: event.fd, gsi: 4)
    }

    func testIRQLineMSIAndRouting() throws {
        let guest = try RealModeGuest(code: [0xF4], irqchip: true)
        try guest.vm.setIRQLine(3, level: true)
        try guest.vm.setIRQLine(3, level: false)
        XCTAssertEqual(try guest.vm.getIRQChip(0).chip.pic.irr & 0x08, 0x08)
        try guest.vm.setGSIRouting(GSIRoute.defaultIRQChipRoutes + [.msi(gsi: 24, address: 0xFEE0_0000, data: 0x31)])
        try guest.vm.setIRQLine(5, level: true)
        XCTAssertEqual(try guest.vm.getIRQChip(0).chip.pic.irr & 0x20, 0x20, "legacy routes survive")
        _ = try guest.vm.signalMSI(address: 0xFEE0_0000, data: 0x30)
        let event = try EventFD()
        try guest.vm.registerIrqfd(eventFD: event.fd, gsi: 24)
        try guest.vm.unregisterIrqfd(eventFD: event.fd, gsi: 24)
    }
}
