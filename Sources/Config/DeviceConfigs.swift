// Device configurations of VmConfig (CH's DiskConfig, NetConfig, …). Stubs with CH's identifying fields;
// completed field-for-field by the API-types work.

public struct DiskConfig: Codable, Sendable, Equatable {
    public var path: String?
    public var readonly: Bool?
    public var id: String?
}

public struct NetConfig: Codable, Sendable, Equatable {
    public var tap: String?
    public var mac: String?
    public var id: String?
}

public struct FsConfig: Codable, Sendable, Equatable {
    public var tag: String
    public var socket: String
    public var id: String?
}

public struct PmemConfig: Codable, Sendable, Equatable {
    public var file: String
    public var id: String?
}

public struct VsockConfig: Codable, Sendable, Equatable {
    public var cid: UInt64
    public var socket: String
    public var id: String?
}

public struct VdpaConfig: Codable, Sendable, Equatable {
    public var path: String
    public var id: String?
}

public struct DeviceConfig: Codable, Sendable, Equatable {
    public var path: String
    public var id: String?
}

public struct UserDeviceConfig: Codable, Sendable, Equatable {
    public var socket: String
    public var id: String?
}
