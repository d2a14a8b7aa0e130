/// Why a `key=value,…` option string could not be understood. Messages name the flag and the bad part.
public enum OptionError: Error, CustomStringConvertible, Equatable {
    case unknownOption(flag: String, option: String, valid: [String])
    case invalidValue(flag: String, option: String, value: String, expected: String)
    case missingOption(flag: String, option: String)
    case syntax(flag: String, input: String, detail: String)

    public var description: String {
        switch self {
        case let .unknownOption(flag, option, valid):
            return "\(flag): unknown option '\(option)' (valid options: \(valid.joined(separator: ", ")))"
        case let .invalidValue(flag, option, value, expected):
            return "\(flag): invalid value '\(value)' for '\(option)': expected \(expected)"
        case let .missingOption(flag, option):
            return "\(flag): '\(option)' is required"
        case let .syntax(flag, input, detail):
            return "\(flag): cannot parse '\(input)': \(detail)"
        }
    }
}

/// Cloud Hypervisor's sub-option syntax, shared by `cloud-hypervisor`, `ch-remote` and `--restore`:
/// `key=value,key2=[a,b],flag=on`. Commas inside `[…]` do not split. A bare value (no `=`) is accepted
/// only when the caller names a default key for it (e.g. `--serial tty` means `mode=tty`).
public struct OptionParser {
    public let flag: String
    public let known: [String]
    private var values: [String: String] = [:]

    /// Parses `input` for `flag`, accepting only `known` keys. `bareKey` names the key a lone value sets.
    public init(flag: String, input: String, known: [String], bareKey: String? = nil) throws {
        self.flag = flag
        self.known = known
        for part in try Self.split(input, flag: flag) where !part.isEmpty {
            let key: String
            let value: String
            if let eq = part.firstIndex(of: "=") {
                key = String(part[..<eq])
                value = String(part[part.index(after: eq)...])
            } else if let bareKey, values[bareKey] == nil {
                key = bareKey
                value = part
            } else {
                throw OptionError.syntax(flag: flag, input: input, detail: "'\(part)' is not of the form key=value")
            }
            guard known.contains(key) else {
                throw OptionError.unknownOption(flag: flag, option: key, valid: known)
            }
            values[key] = value
        }
    }

    /// Splits on commas that are not inside brackets.
    static func split(_ input: String, flag: String) throws -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for ch in input {
            switch ch {
            case "[": depth += 1; current.append(ch)
            case "]":
                depth -= 1
                guard depth >= 0 else { throw OptionError.syntax(flag: flag, input: input, detail: "unbalanced ']'") }
                current.append(ch)
            case "," where depth == 0: parts.append(current); current = ""
            default: current.append(ch)
            }
        }
        guard depth == 0 else { throw OptionError.syntax(flag: flag, input: input, detail: "unbalanced '['") }
        parts.append(current)
        return parts
    }

    public func isSet(_ key: String) -> Bool { values[key] != nil }

    public func string(_ key: String) -> String? { values[key] }

    public func requiredString(_ key: String) throws -> String {
        guard let v = values[key] else { throw OptionError.missingOption(flag: flag, option: key) }
        return v
    }

    /// `on|off|true|false` (CH's Toggle).
    public func bool(_ key: String) throws -> Bool? {
        guard let v = values[key] else { return nil }
        switch v.lowercased() {
        case "on", "true": return true
        case "off", "false": return false
        default: throw OptionError.invalidValue(flag: flag, option: key, value: v, expected: "on, off, true or false")
        }
    }

    public func integer<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self) throws -> T? {
        guard let v = values[key] else { return nil }
        let parsed: T? = v.hasPrefix("0x") ? T(v.dropFirst(2), radix: 16) : T(v)
        guard let n = parsed else {
            throw OptionError.invalidValue(flag: flag, option: key, value: v, expected: "an integer")
        }
        return n
    }

    /// A byte size with an optional K/M/G/T suffix (powers of two), as CH's ByteSized.
    public func size(_ key: String) throws -> UInt64? {
        guard let v = values[key] else { return nil }
        guard let n = Self.parseSize(v) else {
            throw OptionError.invalidValue(flag: flag, option: key, value: v, expected: "a size such as 512M or 2G")
        }
        return n
    }

    public static func parseSize(_ text: String) -> UInt64? {
        var digits = Substring(text)
        var shift: UInt64 = 0
        if let last = digits.last, let s = ["K": 10, "M": 20, "G": 30, "T": 40][String(last).uppercased()] {
            shift = UInt64(s)
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, let n = UInt64(digits) else { return nil }
        let (result, overflow) = n.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : result
    }

    /// `[a,b,c-d]` or `a` → the listed integers, ranges expanded (CH's IntegerList).
    public func integerList(_ key: String) throws -> [Int]? {
        guard let v = values[key] else { return nil }
        let body = v.hasPrefix("[") && v.hasSuffix("]") ? String(v.dropFirst().dropLast()) : v
        var out: [Int] = []
        for item in body.split(separator: ",") {
            let bounds = item.split(separator: "-", maxSplits: 1)
            guard let lo = Int(bounds[0]), let hi = bounds.count == 2 ? Int(bounds[1]) : lo, lo <= hi else {
                throw OptionError.invalidValue(flag: flag, option: key, value: v, expected: "a list such as [0,2-3]")
            }
            out.append(contentsOf: lo...hi)
        }
        return out
    }
}
