// Value types of CH's option syntax beyond the basics in OptionParser: ids, enum choices, string lists,
// `key@value` tuple lists and network addresses. Errors name the flag, the option and what was expected.

extension OptionParser {
    /// A user-chosen device id. Ids starting with `__` are reserved for the devices the VMM names itself
    /// (`__serial`, `__rng`, …), so CH rejects them.
    func identifier(_ key: String) throws -> String? {
        guard let id = string(key) else { return nil }
        guard !id.hasPrefix("__") else {
            throw OptionError.invalidValue(flag: flag, option: key, value: id,
                                           expected: "an id not starting with '__' (reserved for the VMM's own devices)")
        }
        return id
    }

    /// One of a fixed set of CLI spellings (`raw|qcow2|…`), mapped to its typed value.
    func choice<T>(_ key: String, _ choices: KeyValuePairs<String, T>, caseSensitive: Bool = false) throws -> T? {
        guard let v = string(key) else { return nil }
        let wanted = caseSensitive ? v : v.lowercased()
        guard let match = choices.first(where: { $0.key == wanted }) else {
            throw OptionError.invalidValue(flag: flag, option: key, value: v,
                                           expected: choices.map(\.key).joined(separator: ", "))
        }
        return match.value
    }

    /// `[a,b,c]` or `a` (CH's StringList).
    func stringList(_ key: String) throws -> [String]? {
        guard let v = string(key) else { return nil }
        return try OptionParser.split(Self.unbracketed(v), flag: flag).filter { !$0.isEmpty }
    }

    /// `[k1@v1,k2@v2]` (CH's TupleList); `value` parses the part after `@` (nil = invalid).
    func tupleList<V>(_ key: String, expected: String, value: (String) -> V?) throws -> [(String, V)]? {
        guard let v = string(key) else { return nil }
        let invalid = OptionError.invalidValue(flag: flag, option: key, value: v, expected: expected)
        guard v.hasPrefix("["), v.hasSuffix("]") else { throw invalid }
        var pairs: [(String, V)] = []
        for item in try OptionParser.split(String(v.dropFirst().dropLast()), flag: flag) where !item.isEmpty {
            let parts = item.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let parsed = value(String(parts[1])) else { throw invalid }
            pairs.append((String(parts[0]), parsed))
        }
        return pairs
    }

    /// `[1,3-5]` or `2` → [1,3,4,5] / [2], as CH's IntegerList (ranges must ascend).
    static func integerList(_ text: String) -> [Int]? {
        var out: [Int] = []
        for item in unbracketed(text).split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2, let lo = Int(bounds[0]), lo >= 0 else { return nil }
            let hi = bounds.count == 2 ? Int(bounds[1]) : lo
            guard let hi, bounds.count == 1 || lo < hi else { return nil }
            out.append(contentsOf: lo...hi)
        }
        return out
    }

    /// A list of non-negative integers of type `T` (`queue_sizes=[256,256]`, `cpus=[0-3]`, `fd=[3,4]`).
    func integers<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self) throws -> [T]? {
        guard let v = string(key) else { return nil }
        guard let list = Self.integerList(v), list.allSatisfy({ T(exactly: $0) != nil }) else {
            throw OptionError.invalidValue(flag: flag, option: key, value: v,
                                           expected: "a list such as [0,2-3] of integers up to \(T.max)")
        }
        return list.map { T($0) }
    }

    func mac(_ key: String) throws -> MacAddress? {
        guard let v = string(key) else { return nil }
        guard let mac = MacAddress(v) else {
            throw OptionError.invalidValue(flag: flag, option: key, value: v,
                                           expected: "a MAC address such as 12:34:56:78:9a:bc")
        }
        return mac
    }

    func ipAddress(_ key: String) throws -> String? {
        guard let v = string(key) else { return nil }
        guard let ip = IPAddress.canonical(v) else {
            throw OptionError.invalidValue(flag: flag, option: key, value: v,
                                           expected: "an IPv4 or IPv6 address such as 192.168.249.1")
        }
        return ip
    }

    /// Fails unless `key` is set, for options CH requires (`--fs tag=`, `--vsock cid=`, …).
    func required<T>(_ key: String, _ value: T?) throws -> T {
        guard let value else { throw OptionError.missingOption(flag: flag, option: key) }
        return value
    }

    private static func unbracketed(_ v: String) -> String {
        v.hasPrefix("[") && v.hasSuffix("]") ? String(v.dropFirst().dropLast()) : v
    }
}
