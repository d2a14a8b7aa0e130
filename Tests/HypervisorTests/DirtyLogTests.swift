import Hypervisor
import XCTest

final class DirtyLogTests: XCTestCase {
    /// Writes page 1 and page 3; code on page 0 is only read.
    static let writer: [UInt8] = [
        0xB0, 0x11,       // mov al, 0x11
        0xA2, 0x00, 0x10, // mov [0x1000], al
        0xA2, 0x08, 0x30, // mov [0x3008], al
        0xF4,             // hlt
    ]

    func testLogShowsExactlyTheGuestWrittenPages() throws {
        let guest = try RealModeGuest(code: Self.writer, logDirty: true)
        let pages = guest.size / RealModeGuest.pageSize
        let exit = try guest.run()
        guard case .halt = exit else { return XCTFail("expected halt, got \(exit)") }

        XCTAssertEqual(try guest.vm.dirtyLog(slot: 0, pages: pages), [0b1010])
        XCTAssertEqual(try guest.vm.dirtyLog(slot: 0, pages: pages), [0], "GET_DIRTY_LOG re-arms tracking")
        guest[0x5000] = 1
        XCTAssertEqual(try guest.vm.dirtyLog(slot: 0, pages: pages), [0], "VMM writes are not logged")
    }

    func testManualProtectKeepsBitsUntilCleared() throws {
        let kvm = try openKVM()
        guard kvm.checkExtension(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) != 0 else {
            throw XCTSkip("no KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2")
        }
        let guest = try RealModeGuest(code: Self.writer, logDirty: true) { vm in
            try vm.enableManualDirtyLogProtect()
        }
        let pages = guest.size / RealModeGuest.pageSize
        _ = try guest.run()
        XCTAssertEqual(try guest.vm.dirtyLog(slot: 0, pages: pages), [0b1010])
        XCTAssertEqual(try guest.vm.dirtyLog(slot: 0, pages: pages), [0b1010], "manual mode: GET does not clear")
        try guest.vm.clearDirtyLog(slot: 0, firstPage: 0, bitmap: [0b1010], pages: pages)
        XCTAssertEqual(try guest.vm.dirtyLog(slot: 0, pages: pages), [0])
        XCTAssertThrowsError(try guest.vm.clearDirtyLog(slot: 0, firstPage: 3, bitmap: [1]))
    }

    func testDirtyLogOnUnloggedSlotExplainsItself() throws {
        let guest = try RealModeGuest(code: [0xF4])
        XCTAssertThrowsError(try guest.vm.dirtyLog(slot: 0, pages: 16)) { error in
            XCTAssertTrue("\(error)".contains("KVM_GET_DIRTY_LOG failed"), "\(error)")
        }
    }
}
