/// The Extended System Description Table: 64-bit pointers to every table but the DSDT (the FADT has that).
enum XSDT {
    static func length(entries: Int) -> Int { SystemDescriptionTable.headerSize + 8 * entries }

    static func bytes(tables: [UInt64], config: ACPIConfig) -> [UInt8] {
        var t = SystemDescriptionTable(signature: "XSDT", revision: 1, config: config)
        for address in tables { t.bytes.append(address) }
        return t.finished()
    }
}
