/// Where a console's bytes go (CH's ConsoleOutputMode; PascalCase in JSON, lowercase on the CLI).
public enum ConsoleMode: String, Codable, Sendable, Equatable, CaseIterable {
    case Off, Pty, Tty, File, Socket, Null
}

/// The legacy serial port (`serial`) or the virtio-console (`console`). CH's JSON for both starts with
/// `file`/`mode`/`socket`; only the virtio-console, a PCI device, also carries the common PCI fields —
/// VmConfig writes `serial` without them.
public struct ConsoleConfig: PciDeviceConfig, Codable, Sendable, Equatable {
    public var mode: ConsoleMode
    public var file: String?
    public var socket: String?
    public var pci_common: PciDeviceCommonConfig

    public init(mode: ConsoleMode, file: String? = nil, socket: String? = nil) {
        self.mode = mode
        self.file = file
        self.socket = socket
        self.pci_common = PciDeviceCommonConfig()
    }

    public static let defaultSerial = ConsoleConfig(mode: .Null)
    public static let defaultConsole = ConsoleConfig(mode: .Tty)

    enum CodingKeys: String, CodingKey { case file, mode, socket }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(ConsoleMode.self, forKey: .mode)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        socket = try c.decodeIfPresent(String.self, forKey: .socket)
        pci_common = try PciDeviceCommonConfig(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try encodeOutput(to: encoder)
        try pci_common.encode(to: encoder)
    }

    /// Only `file`, `mode`, `socket`: the whole of CH's SerialConfig.
    func encodeOutput(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(file, forKey: .file)
        try c.encode(mode, forKey: .mode)
        try c.encodeIfPresent(socket, forKey: .socket)
    }

    /// `off|null|pty|tty|file=PATH|socket=PATH` for `--serial`; `--console` also takes
    /// `iommu=on,id=…,pci_segment=N,pci_device_id=N`. (`mode=tty` is accepted as a spelling of `tty`.)
    public static func parse(_ input: String, flag: String) throws -> ConsoleConfig {
        let pciOptions = flag == "--console" ? PciDeviceCommonConfig.optionsWithIOMMU : []
        let p = try OptionParser(flag: flag, input: input, known: ["mode", "file", "socket"] + pciOptions, bareKey: "mode")
        var config: ConsoleConfig
        if let file = p.string("file") {
            config = ConsoleConfig(mode: .File, file: file)
        } else if let socket = p.string("socket") {
            config = ConsoleConfig(mode: .Socket, socket: socket)
        } else {
            let text = try p.requiredString("mode")
            guard let mode = ConsoleMode.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }),
                  mode != .File, mode != .Socket else {
                throw OptionError.invalidValue(flag: flag, option: "mode", value: text,
                                               expected: "off, null, pty, tty, file=PATH or socket=PATH")
            }
            config = ConsoleConfig(mode: mode)
        }
        config.pci_common = try PciDeviceCommonConfig(parsing: p)
        return config
    }
}

/// The x86 debug port console (port 0xe9 by default), off unless asked for.
public struct DebugConsoleConfig: Codable, Sendable, Equatable {
    public var file: String?
    public var mode: ConsoleMode
    public var iobase: UInt16?

    public static let defaultPort: UInt16 = 0xe9

    public init(mode: ConsoleMode = .Off, file: String? = nil, iobase: UInt16? = DebugConsoleConfig.defaultPort) {
        self.file = file
        self.mode = mode
        self.iobase = iobase
    }

    /// `off|null|pty|tty|file=PATH[,iobase=0xNN]` for `--debug-console`.
    public static func parse(_ input: String) throws -> DebugConsoleConfig {
        let flag = "--debug-console"
        let p = try OptionParser(flag: flag, input: input, known: ["mode", "file", "iobase"], bareKey: "mode")
        var config: DebugConsoleConfig
        if let file = p.string("file") {
            config = DebugConsoleConfig(mode: .File, file: file, iobase: nil)
        } else {
            let text = try p.requiredString("mode")
            guard let mode = ConsoleMode.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }),
                  mode != .File, mode != .Socket else {
                throw OptionError.invalidValue(flag: flag, option: "mode", value: text,
                                               expected: "off, null, pty, tty or file=PATH")
            }
            config = DebugConsoleConfig(mode: mode, iobase: nil)
        }
        if let port = p.string("iobase") {
            guard port.hasPrefix("0x"), let value = UInt16(port.dropFirst(2), radix: 16) else {
                throw OptionError.invalidValue(flag: flag, option: "iobase", value: port, expected: "a hex port such as 0xe9")
            }
            config.iobase = value
        }
        return config
    }
}
