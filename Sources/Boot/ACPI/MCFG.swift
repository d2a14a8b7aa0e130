/// The PCI Express memory-mapped configuration table: one ECAM window for one segment.
enum MCFG {
    static func bytes(config: ACPIConfig) -> [UInt8] {
        var t = SystemDescriptionTable(signature: "MCFG", revision: 1, length: 44, config: config)   // + 8 reserved
        let buses = config.pciMMConfig.size >> 20
        t.bytes.append(config.pciMMConfig.base)
        t.bytes.append(config.pciSegment)
        t.bytes.append([0, UInt8(buses - 1)])                    // start and end bus
        t.bytes.append(UInt32(0))
        return t.finished()
    }
}
