// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-cloud-hypervisor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cloud-hypervisor", targets: ["cloud-hypervisor"]),
        .executable(name: "ch-remote", targets: ["ch-remote"]),
        .executable(name: "ch-snapshot", targets: ["ch-snapshot"]),
        .library(name: "CloudHypervisorClient", targets: ["CloudHypervisorClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // C only where Swift cannot go: ioctl, linux/kvm.h constants, signals.
        .target(name: "CKVM"),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CDBus", pkgConfig: "dbus-1", providers: [.apt(["libdbus-1-dev"])]),
        // Typed Swift over /dev/kvm: system, VM, vCPU, memory slots, irq lines, irqfd/ioeventfd, dirty log.
        .target(name: "Hypervisor", dependencies: ["CKVM"]),
        // Guest RAM: host mappings (anonymous or memfd), the guest physical layout, bounds-checked access.
        .target(name: "Memory", dependencies: ["CKVM"]),
        // What is written into guest memory before the first instruction: loaders, E820, ACPI tables.
        .target(name: "Boot", dependencies: ["Memory"]),
        // Emulated devices behind the port-I/O and MMIO buses.
        .target(name: "Devices"),
        // PCI segment 0: config space (0xCF8/0xCFC and ECAM), BAR placement, MSI-X tables.
        .target(name: "Pci", dependencies: ["Devices"]),
        // Virtio devices: split virtqueues, the device protocol, the device threads, and the devices
        // (blk, net, rng, console, vsock) with their host backends.
        .target(name: "Virtio", dependencies: ["CKVM", "Memory", "Hypervisor", "Pci"]),
        // Cloud Hypervisor's configuration and API data types (VmConfig, VmInfo, …) and the key=value
        // sub-option syntax shared by all CLIs.
        .target(name: "Config"),
        // zstd contexts (one frame, or scattered runs as one frame) and the cheap compressibility probe, shared
        // by snapshots and migration.
        .target(name: "Zstd", dependencies: ["CZstd"]),
        // Snapshot container: versioned state sections and zstd-compressed memory ranges, with checksums.
        .target(name: "Snapshot", dependencies: ["Zstd", "CKVM"]),
        // Compact self-describing binary Codable for component state payloads (fast to save and restore).
        .target(name: "StateEncoding"),
        // The virtual machine monitor: builds a VM from a VmConfig, runs vCPU threads, owns its lifecycle.
        .target(name: "VMM", dependencies: [
            "Hypervisor", "Memory", "Boot", "Devices", "Pci", "Virtio", "Config", "Snapshot", "Migration", "Zstd",
            "StateEncoding",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Live migration wire protocol and transports (UNIX, TCP), independent of KVM.
        .target(name: "Migration", dependencies: ["Config", "Zstd"]),
        // The D-Bus frontend (org.cloudhypervisor.DBusApi1) over libdbus-1, on its own thread.
        .target(name: "DBusAPI", dependencies: [
            "VMM", "Config", "CDBus",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The REST frontend: HTTP/1.1 over a UNIX socket (SwiftNIO), turning requests into VmmCommands.
        .target(name: "API", dependencies: [
            "VMM", "Config",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Swift client of the Cloud Hypervisor REST API (ch-remote is built on it).
        .target(name: "CloudHypervisorClient", dependencies: [
            "Config",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "cloud-hypervisor", dependencies: [
            "VMM", "Config", "API", "DBusAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "ch-remote", dependencies: [
            "CloudHypervisorClient", "Config",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "ch-snapshot", dependencies: [
            "Snapshot",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Shared by the tests: spawning the VMM/QEMU, watching a guest console, locating the checkguest, a full VmConfig.
        .target(name: "TestSupport", dependencies: ["Config"], path: "Tests/Support"),
        .testTarget(name: "HypervisorTests", dependencies: ["Hypervisor", "TestSupport"]),
        .testTarget(name: "MemoryTests", dependencies: ["Memory"]),
        .testTarget(name: "BootTests", dependencies: ["Boot", "Memory", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "TestSupport"]),
        .testTarget(name: "PciTests", dependencies: ["Pci", "Devices"]),
        .testTarget(name: "VirtioTests", dependencies: ["Virtio", "Memory", "Hypervisor", "Pci"]),
        .testTarget(name: "VMMTests", dependencies: ["VMM", "Config", "Devices", "Hypervisor", "Snapshot", "StateEncoding", "TestSupport"]),
        .testTarget(name: "GuestTests", dependencies: ["TestSupport"]),
        .testTarget(name: "APITests", dependencies: ["API", "VMM", "Config", "TestSupport"]),
        .testTarget(name: "ClientTests", dependencies: ["CloudHypervisorClient", "Config", "TestSupport"]),
        .testTarget(name: "StateEncodingTests", dependencies: ["StateEncoding"]),
        .testTarget(name: "SnapshotTests", dependencies: ["Snapshot", "TestSupport"]),
        .testTarget(name: "MigrationTests", dependencies: ["Migration", "VMM", "Config", "Zstd", "TestSupport"]),
        .testTarget(name: "DBusAPITests", dependencies: ["DBusAPI", "VMM", "Config", "TestSupport"]),
    ]
)
