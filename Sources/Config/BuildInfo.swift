/// The version this build reports (`-V`, `vmm.ping`).
public enum BuildInfo {
    public static let version = "v0.1.0"
    public static let name = "cloud-hypervisor"
}
