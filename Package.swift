// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-cloud-hypervisor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cloud-hypervisor", targets: ["cloud-hypervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // C only where Swift cannot go: ioctl, linux/kvm.h constants, signals.
        .target(name: "CKVM"),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // Typed Swift over /dev/kvm: system, VM, vCPU, memory slots, irq lines, irqfd/ioeventfd, dirty log.
        .target(name: "Hypervisor", dependencies: ["CKVM"]),
        // Guest RAM: host mappings (anonymous or memfd), the guest physical layout, bounds-checked access.
        .target(name: "Memory", dependencies: ["CKVM"]),
        // What is written into guest memory before the first instruction: loaders, E820, ACPI tables.
        .target(name: "Boot", dependencies: ["Memory"]),
        // Emulated devices behind the port-I/O and MMIO buses.
        .target(name: "Devices"),
        // Cloud Hypervisor's configuration: VmConfig and the key=value sub-option syntax shared by all CLIs.
        .target(name: "Config"),
        // The virtual machine monitor: builds a VM from a VmConfig, runs vCPU threads, owns its lifecycle.
        .target(name: "VMM", dependencies: [
            "Hypervisor", "Memory", "Boot", "Devices", "Config",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "cloud-hypervisor", dependencies: [
            "VMM", "Config",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Shared by the tests: spawning the VMM/QEMU, watching a guest console, locating the checkguest.
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "HypervisorTests", dependencies: ["Hypervisor", "TestSupport"]),
        .testTarget(name: "MemoryTests", dependencies: ["Memory"]),
        .testTarget(name: "BootTests", dependencies: ["Boot", "Memory", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "VMMTests", dependencies: ["VMM", "TestSupport"]),
        .testTarget(name: "GuestTests", dependencies: ["TestSupport"], exclude: []),
    ]
)
