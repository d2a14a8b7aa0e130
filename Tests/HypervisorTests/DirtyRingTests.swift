@testable import Hypervisor
import XCTest

/// The harvesting protocol on a ring in ordinary memory (no KVM): order, flags, index wrap-around.
final class DirtyRingHarvestTests: XCTestCase {
    private var storage: UnsafeMutablePointer<kvm_dirty_gfn>!
    private let count: UInt32 = 8

    override func setUp() {
        storage = .allocate(capacity: Int(count))
        storage.initialize(repeating: kvm_dirty_gfn(), count: Int(count))
    }

    override func tearDown() { storage.deallocate() }

    /// What KVM does: fills the entry at `index`, then sets DIRTY.
    private func publish(at index: UInt32, slot: UInt32, page: UInt64) {
        let entry = storage + Int(index & (count - 1))
        entry.pointee.slot = slot
        entry.pointee.offset = page
        entry.pointee.flags = CKVM_DIRTY_GFN_F_DIRTY
    }

    private func collect(_ ring: inout DirtyRing) -> [[UInt64]] {
        var seen: [[UInt64]] = []
        _ = ring.harvest { seen.append([UInt64($0), $1]) }
        return seen
    }

    func testHarvestsInOrderUpToTheFirstUnpublishedEntryAndMarksThemReset() {
        var ring = DirtyRing(entries: storage, count: count)
        publish(at: 0, slot: 0, page: 5)
        publish(at: 1, slot: 1, page: 7)
        publish(at: 3, slot: 0, page: 9) // not reachable until entry 2 is published
        XCTAssertEqual(collect(&ring), [[0, 5], [1, 7]])
        XCTAssertEqual(ring.next, 2)
        XCTAssertEqual(storage[0].flags, CKVM_DIRTY_GFN_F_RESET)
        XCTAssertEqual(storage[1].flags, CKVM_DIRTY_GFN_F_RESET)
        XCTAssertEqual(collect(&ring), [], "nothing new: entries marked RESET are not harvested twice")
        publish(at: 2, slot: 0, page: 8)
        XCTAssertEqual(collect(&ring), [[0, 8], [0, 9]])
    }

    func testIndexWrapsAroundTheRingAndAtTwoToThe32() {
        let start = UInt32.max - 2 // slots 5, 6, 7, then 0, 1 after the 32-bit wrap
        var ring = DirtyRing(entries: storage, count: count, next: start)
        for i in 0..<5 as Range<UInt32> { publish(at: start &+ i, slot: 0, page: UInt64(i)) }
        XCTAssertEqual(collect(&ring).map { $0[1] }, [0, 1, 2, 3, 4])
        XCTAssertEqual(ring.next, 2)
    }

    func testAFullRingIsHarvestedOnceNotLapped() {
        var ring = DirtyRing(entries: storage, count: count)
        for i in 0..<count { publish(at: i, slot: 0, page: UInt64(i)) }
        XCTAssertEqual(ring.harvest { _, _ in }, Int(count))
        XCTAssertEqual(ring.harvest { _, _ in }, 0)
    }

    func testPageSetIsPerSlotSizedExactlyAndDropsOtherAddressSpaces() {
        var set = DirtyPageSet()
        set.insert(slot: 0, page: 1)
        set.insert(slot: 0, page: 64)
        set.insert(slot: 2, page: 0)
        set.insert(slot: 1 << 16, page: 3) // address space 1 (SMM): not ours
        XCTAssertEqual(set.take(slotPages: [130, 10, 1]), [[0b10, 1, 0], [0], [1]])
        XCTAssertEqual(set.take(slotPages: [64]), [[0]], "taking empties the set")
    }
}

/// The dirty ring on real KVM: what the guest writes, and a full ring.
final class DirtyRingKVMTests: XCTestCase {
    private func ringGuest(code: [UInt8], size: Int, entries: Int) throws -> RealModeGuest {
        let kvm = try openKVM()
        guard kvm.checkExtension(KVM_CAP_DIRTY_LOG_RING) > 0 || kvm.checkExtension(KVM_CAP_DIRTY_LOG_RING_ACQ_REL) > 0 else {
            throw XCTSkip("no KVM_CAP_DIRTY_LOG_RING")
        }
        return try RealModeGuest(code: code, size: size, logDirty: true) { try $0.enableDirtyRing(entries: entries) }
    }

    func testRingShowsExactlyTheGuestWrittenPages() throws {
        let guest = try ringGuest(code: DirtyLogTests.writer, size: 0x10000, entries: 256)
        let rings = try XCTUnwrap(guest.vm.dirtyRings)
        guard case .halt = try guest.run() else { return XCTFail("expected halt") }
        XCTAssertEqual(try rings.take(slotPages: [16]), [[0b1010]])
        XCTAssertEqual(try rings.take(slotPages: [16]), [[0]])
        guest[0x5000] = 1
        XCTAssertEqual(try rings.take(slotPages: [16]), [[0]], "VMM writes are not logged")
        XCTAssertThrowsError(try guest.vm.dirtyLog(slot: 0, pages: 16)) { error in
            XCTAssertTrue("\(error)".contains("rings"), "\(error)")
        }
    }

    /// Writes one byte to each page from 64 KiB to 956 KiB (224 pages): more than a 256-entry ring holds
    /// before KVM stops the vCPU (its last 64 entries are kept in reserve).
    static let pageWriter: [UInt8] = [
        0xB8, 0x00, 0x10,                   // mov ax, 0x1000
        0x8E, 0xC0,                         // loop: mov es, ax
        0x26, 0xC6, 0x06, 0x00, 0x00, 0x01, // mov byte [es:0], 1
        0x05, 0x00, 0x01,                   // add ax, 0x100 (next 4 KiB)
        0x3D, 0x00, 0xF0,                   // cmp ax, 0xF000
        0x72, 0xF0,                         // jb loop
        0xF4,                               // hlt
    ]

    func testFullRingStopsTheVCPUUntilReaped() throws {
        let guest = try ringGuest(code: Self.pageWriter, size: 0x100000, entries: 256)
        let rings = try XCTUnwrap(guest.vm.dirtyRings)
        var full = 0
        var exit = try guest.run()
        while case .dirtyRingFull = exit {
            full += 1
            try rings.reap()
            exit = try guest.run()
        }
        guard case .halt = exit else { return XCTFail("expected halt, got \(exit)") }
        XCTAssertGreaterThanOrEqual(full, 1)
        let bitmap = try rings.take(slotPages: [256])[0]
        let pages = (0..<256).filter { bitmap[$0 / 64] & (1 << ($0 % 64)) != 0 }
        XCTAssertEqual(pages, Array(16..<240))
    }

    func testEnablingAfterAVCPUExistsExplainsItself() throws {
        let guest = try RealModeGuest(code: [0xF4])
        XCTAssertThrowsError(try guest.vm.enableDirtyRing(entries: 256)) { error in
            XCTAssertTrue("\(error)".contains("before the first vCPU"), "\(error)")
        }
        XCTAssertThrowsError(try guest.vm.enableDirtyRing(entries: 300)) { error in
            XCTAssertTrue("\(error)".contains("power of two"), "\(error)")
        }
    }
}
