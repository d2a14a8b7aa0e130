import Foundation

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

/// "1.50 GiB (1610612736)" — human size, exact bytes.
func bytes(_ count: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(count), unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(count) B" : String(format: "%.2f %@ (%llu)", value, units[unit], count)
}

func percent(_ part: UInt64, of whole: UInt64) -> String {
    whole == 0 ? "0%" : String(format: "%.1f%%", Double(part) * 100 / Double(whole))
}

func printTable(header: [String], rows: [[String]], indent: String) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        let cells = row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
        print(indent + cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}

/// Parses "256M", "1G", "4096", "2MiB".
func parseSize(_ text: String) -> Int? {
    let lower = text.lowercased().replacingOccurrences(of: "ib", with: "").replacingOccurrences(of: "b", with: "")
    let shifts: [Character: Int] = ["k": 10, "m": 20, "g": 30]
    if let last = lower.last, let shift = shifts[last], let n = Int(lower.dropLast()) { return n << shift }
    return Int(lower)
}
