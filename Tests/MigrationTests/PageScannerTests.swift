import Migration
import XCTest

final class PageScannerTests: XCTestCase {
    private func runs(_ ram: SyntheticRAM, dirty: [UInt64]?) -> [String] {
        var out: [String] = []
        PageScanner.scan(ram.regions[0], dirty: dirty) { run in
            out.append("\(run.isZero ? "Z" : "D")\((run.gpa - ram.regions[0].guestBase) / 4096)+\(run.pages)")
        }
        return out
    }

    func testAllPagesCoalesceIntoZeroAndDataRuns() throws {
        let ram = SyntheticRAM([(base: 0x10_0000, pages: 10)])
        for page in [2, 3, 4, 7] { ram.fill(region: 0, page: page, seed: UInt64(page)) }
        XCTAssertEqual(runs(ram, dirty: nil), ["Z0+2", "D2+3", "Z5+2", "D7+1", "Z8+2"])
    }

    func testOnlyDirtyPagesAreVisitedAndGapsSplitRuns() throws {
        let ram = SyntheticRAM([(base: 0, pages: 130)])
        for page in [1, 2, 64, 65, 129] { ram.fill(region: 0, page: page, seed: 9) }
        // Dirty: 1, 2, 3 (now zero), 5, 64, 65, 129, and a bit past the region's end that must be ignored.
        let bitmap: [UInt64] = [0b101110, 0b11, 0b10 | (1 << 63)]
        XCTAssertEqual(runs(ram, dirty: bitmap), ["D1+2", "Z3+1", "Z5+1", "D64+2", "D129+1"])
        XCTAssertEqual(PageScanner.count(bitmap), 8)
        XCTAssertEqual(runs(ram, dirty: [0, 0, 0]), [])
    }

    func testAPageWithOnlyTheLastByteSetIsNotZero() throws {
        let ram = SyntheticRAM([(base: 0, pages: 2)])
        ram.regions[0].host.storeBytes(of: 1, toByteOffset: 4095, as: UInt8.self)
        XCTAssertEqual(runs(ram, dirty: nil), ["D0+1", "Z1+1"])
    }
}
