/// A tiny AML (ACPI Machine Language) encoder: just the constructs our DSDT needs — names, integers,
/// strings, EISA ids, packages, scopes, devices, methods returning constants, Notify, and resource
/// templates. Each function returns the encoded bytes of one term (ACPI 6.5, chapter 20).
public enum AML {
    // Opcodes (ACPI 6.5 §20.3).
    static let zeroOp: UInt8 = 0x00, oneOp: UInt8 = 0x01, onesOp: UInt8 = 0xFF
    static let bytePrefix: UInt8 = 0x0A, wordPrefix: UInt8 = 0x0B, dwordPrefix: UInt8 = 0x0C
    static let stringPrefix: UInt8 = 0x0D, qwordPrefix: UInt8 = 0x0E
    static let nameOp: UInt8 = 0x08, scopeOp: UInt8 = 0x10, bufferOp: UInt8 = 0x11, packageOp: UInt8 = 0x12
    static let methodOp: UInt8 = 0x14, extOpPrefix: UInt8 = 0x5B, deviceOp: UInt8 = 0x82
    static let returnOp: UInt8 = 0xA4, notifyOp: UInt8 = 0x86
    static let rootChar: UInt8 = 0x5C, parentPrefix: UInt8 = 0x5E
    static let dualNamePrefix: UInt8 = 0x2E, multiNamePrefix: UInt8 = 0x2F

    /// A name or path: "_HID", "PCI0", "\\_SB_.PWRB", "^PCI0". Segments shorter than 4 are padded with '_'.
    public static func nameString(_ path: String) -> [UInt8] {
        var rest = Substring(path)
        var out: [UInt8] = []
        if rest.first == "\\" { out.append(rootChar); rest = rest.dropFirst() }
        while rest.first == "^" { out.append(parentPrefix); rest = rest.dropFirst() }
        let segments = rest.isEmpty ? [] : rest.split(separator: ".", omittingEmptySubsequences: false)
        switch segments.count {
        case 0: out.append(0x00)
        case 1: break
        case 2: out.append(dualNamePrefix)
        default: out += [multiNamePrefix, UInt8(segments.count)]
        }
        for segment in segments { out += nameSeg(segment) }
        return out
    }

    static func nameSeg(_ segment: Substring) -> [UInt8] {
        let chars = Array(segment.utf8)
        precondition(!chars.isEmpty && chars.count <= 4, "AML name segment '\(segment)' must be 1–4 characters")
        for (i, c) in chars.enumerated() {
            let upper = (0x41...0x5A).contains(c), digit = (0x30...0x39).contains(c), underscore = c == 0x5F
            precondition(upper || underscore || (digit && i > 0), "bad AML name segment '\(segment)'")
        }
        return chars + [UInt8](repeating: 0x5F, count: 4 - chars.count)
    }

    /// PkgLength (§20.2.4) for a body of `count` bytes: the length counts its own bytes too.
    static func pkgLength(_ count: Int) -> [UInt8] {
        if count + 1 < 0x40 { return [UInt8(count + 1)] }
        for extra in 1...3 {
            let total = count + 1 + extra
            if total < 1 << (4 + 8 * extra) {
                var out = [UInt8(extra << 6) | UInt8(total & 0xF)]
                for i in 0..<extra { out.append(UInt8((total >> (4 + 8 * i)) & 0xFF)) }
                return out
            }
        }
        preconditionFailure("AML package of \(count) bytes is too long")
    }

    /// The shortest encoding of an integer constant.
    public static func integer(_ value: UInt64) -> [UInt8] {
        switch value {
        case 0: return [zeroOp]
        case 1: return [oneOp]
        case ...0xFF: return [bytePrefix, UInt8(value)]
        case ...0xFFFF: return [wordPrefix] + le(value, 2)
        case ...0xFFFF_FFFF: return [dwordPrefix] + le(value, 4)
        default: return [qwordPrefix] + le(value, 8)
        }
    }

    public static func string(_ text: String) -> [UInt8] { [stringPrefix] + Array(text.utf8) + [0] }

    /// EisaId("PNP0A08"): three letters and four hex digits compressed into a DWord (§19.6.35).
    public static func eisaID(_ id: String) -> [UInt8] {
        let c = Array(id.utf8)
        precondition(c.count == 7 && c[0..<3].allSatisfy { (0x41...0x5A).contains($0) }, "bad EISA id \(id)")
        guard let product = UInt16(String(decoding: c[3...], as: UTF8.self), radix: 16) else {
            preconditionFailure("bad EISA id \(id)")
        }
        let vendor = UInt16(c[0] - 0x40) << 10 | UInt16(c[1] - 0x40) << 5 | UInt16(c[2] - 0x40)
        // Stored big-endian: vendor's high byte first.
        return [dwordPrefix, UInt8(vendor >> 8), UInt8(vendor & 0xFF), UInt8(product >> 8), UInt8(product & 0xFF)]
    }

    /// Name(path, object)
    public static func name(_ path: String, _ object: [UInt8]) -> [UInt8] { [nameOp] + nameString(path) + object }

    /// Scope(path) { terms }
    public static func scope(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameString(path) + terms.flatMap { $0 }
        return [scopeOp] + pkgLength(body.count) + body
    }

    /// Device(path) { terms }
    public static func device(_ path: String, _ terms: [[UInt8]]) -> [UInt8] {
        let body = nameString(path) + terms.flatMap { $0 }
        return [extOpPrefix, deviceOp] + pkgLength(body.count) + body
    }

    /// Method(path, arguments, Serialized/NotSerialized) { terms }
    public static func method(_ path: String, arguments: Int = 0, serialized: Bool = false,
                              _ terms: [[UInt8]]) -> [UInt8] {
        precondition((0...7).contains(arguments), "AML methods take 0–7 arguments")
        let flags = UInt8(arguments) | (serialized ? 0x08 : 0)
        let body = nameString(path) + [flags] + terms.flatMap { $0 }
        return [methodOp] + pkgLength(body.count) + body
    }

    /// Return(value)
    public static func `return`(_ value: [UInt8]) -> [UInt8] { [returnOp] + value }

    /// Notify(path, value)
    public static func notify(_ path: String, _ value: UInt64) -> [UInt8] {
        [notifyOp] + nameString(path) + integer(value)
    }

    /// Package() { elements }
    public static func package(_ elements: [[UInt8]]) -> [UInt8] {
        precondition(elements.count <= 0xFF, "AML package of more than 255 elements")
        let body = [UInt8(elements.count)] + elements.flatMap { $0 }
        return [packageOp] + pkgLength(body.count) + body
    }

    /// Buffer() { bytes }
    public static func buffer(_ bytes: [UInt8]) -> [UInt8] {
        let body = integer(UInt64(bytes.count)) + bytes
        return [bufferOp] + pkgLength(body.count) + body
    }

    /// ResourceTemplate() { descriptors }: a buffer of resource descriptors closed by an End Tag.
    public static func resourceTemplate(_ descriptors: [AMLResource]) -> [UInt8] {
        buffer(descriptors.flatMap(\.bytes) + [0x79, 0x00])   // End Tag; checksum 0 means "valid"
    }

    static func le(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8((value >> (8 * UInt64($0))) & 0xFF) }
    }
}
