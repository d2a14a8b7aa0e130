// The device checks CH makes when a VM boots or a device is added: unique ids (409 when violated),
// queue counts and sizes, vhost-user needing shared memory, net and vsock sanity, PCI segments.

extension VmConfig {
    /// Ids, paths and device parameters, in the order CH checks them.
    func validateDevices() throws {
        try validateIdentifiers()
        try validatePlatform()
        for disk in disks ?? [] { try validate(disk) }
        for n in net ?? [] { try validate(n) }
        for f in fs ?? [] {
            try requireSharedMemory(for: "fs")
            try requireQueues(f.num_queues, f.queue_size, device: "fs")
        }
        for g in generic_vhost_user ?? [] {
            try requireSharedMemory(for: "generic vhost-user")
            for size in g.queue_sizes { try requireQueueSize(size, device: "generic vhost-user") }
        }
        if !(user_devices ?? []).isEmpty { try requireSharedMemory(for: "user device") }
        if let vsock, [0, 1, 2, UInt32.max].contains(vsock.cid) { throw ValidationError.vsockSpecialCID(vsock.cid) }
        if let balloon, balloon.size >= memory.totalSize {
            throw ValidationError.balloonLargerThanRAM(balloon: balloon.size, ram: memory.totalSize)
        }
        var paths = Set<String>()
        for device in devices ?? [] {
            guard (device.path == nil) != (device.fd == nil) else { throw ValidationError.vfioDeviceNeedsPathOrFd }
            if let path = device.path, !paths.insert(path).inserted { throw ValidationError.duplicateDevicePath(path) }
        }
        for segment in pciSegmentsInUse where segment >= numPciSegments { throw ValidationError.invalidPciSegment(segment) }
    }

    /// Every user-given id, in CH's order: rate-limit groups, devices, memory zones.
    var userIdentifiers: [String] {
        var ids: [String?] = (rate_limit_groups ?? []).map(\.id)
        ids += (disks ?? []).map(\.id) + (net ?? []).map(\.id) + (fs ?? []).map(\.id)
        ids += (generic_vhost_user ?? []).map(\.id) + (pmem ?? []).map(\.id) + [rng.id, rtc?.id, console.id]
        ids += (user_devices ?? []).map(\.id) + (vdpa ?? []).map(\.id) + [balloon?.id]
        ids += (devices ?? []).map(\.id) + [vsock?.id] + (memory.zones ?? []).map(\.id)
        return ids.compactMap { $0 }
    }

    private func validateIdentifiers() throws {
        var seen = Set<String>()
        for id in userIdentifiers {
            guard !id.hasPrefix("__") else { throw ValidationError.invalidIdentifier(id) }
            guard seen.insert(id).inserted else { throw ValidationError.identifierNotUnique(id) }
        }
    }

    private var numPciSegments: UInt16 { platform?.num_pci_segments ?? 1 }

    private var pciSegmentsInUse: [UInt16] {
        var all: [PciDeviceCommonConfig] = [rng.pci_common, console.pci_common]
        all += (disks ?? []).map(\.pci_common) + (net ?? []).map(\.pci_common) + (fs ?? []).map(\.pci_common)
        all += (generic_vhost_user ?? []).map(\.pci_common) + (pmem ?? []).map(\.pci_common)
        all += (user_devices ?? []).map(\.pci_common) + (vdpa ?? []).map(\.pci_common) + (devices ?? []).map(\.pci_common)
        all += [rtc?.pci_common, balloon?.pci_common, vsock?.pci_common].compactMap { $0 }
        return all.map(\.pci_segment) + (pci_segments ?? []).map(\.pci_segment)
    }

    private func validatePlatform() throws {
        guard let platform else { return }
        guard (1...PlatformConfig.maxPciSegments).contains(platform.num_pci_segments) else {
            throw ValidationError.invalidNumPciSegments(platform.num_pci_segments)
        }
        for segment in platform.iommu_segments ?? [] where segment >= platform.num_pci_segments {
            throw ValidationError.invalidPciSegment(segment)
        }
    }

    private func validate(_ disk: DiskConfig) throws {
        if disk.vhost_socket != nil && disk.path != nil { throw ValidationError.diskSocketAndPath }
        if disk.vhost_user {
            try requireSharedMemory(for: "disk")
            if disk.vhost_socket == nil { throw ValidationError.vhostUserMissingSocket(device: "disk") }
        }
        if let group = disk.rate_limit_group, !(rate_limit_groups ?? []).contains(where: { $0.id == group }) {
            throw ValidationError.unknownRateLimitGroup(group)
        }
        try requireQueues(disk.num_queues, disk.queue_size, device: "disk")
        // virtio-blk's serial field holds 20 bytes.
        if let serial = disk.serial, serial.utf8.count > 20 {
            throw ValidationError.diskSerialTooLong(length: serial.utf8.count, maximum: 20)
        }
    }

    private func validate(_ n: NetConfig) throws {
        if n.vhost_user {
            try requireSharedMemory(for: "net")
            if n.vhost_socket == nil { throw ValidationError.vhostUserMissingSocket(device: "net") }
        }
        guard n.num_queues >= 2 else { throw ValidationError.netQueuesBelowTwo(n.num_queues) }
        if let fds = n.fds, fds.count * 2 != n.num_queues {
            throw ValidationError.netQueueFdMismatch(queues: n.num_queues, fds: fds.count)
        }
        // Each queue pair (rx+tx) gets a vCPU.
        if n.num_queues / 2 > Int(cpus.boot_vcpus) {
            throw ValidationError.tooManyQueues(device: "net", queues: n.num_queues, bootVCPUs: cpus.boot_vcpus)
        }
        try requireQueueSize(n.queue_size, device: "net")
        if let mtu = n.mtu, mtu < 1280 { throw ValidationError.mtuTooSmall(mtu) }
        if !n.offload_csum && (n.offload_tso || n.offload_ufo) { throw ValidationError.checksumOffloadRequired }
        if (n.ip == nil) != (n.mask == nil) { throw ValidationError.ipAndMaskMustBePaired }
    }

    /// vhost-user backends and vfio-user devices map guest RAM, so it must be shareable.
    private var backedBySharedMemory: Bool {
        memory.shared || memory.hugepages
            || (memory.size == 0 && (memory.zones ?? []).allSatisfy { $0.shared || $0.hugepages })
    }

    private func requireSharedMemory(for device: String) throws {
        guard backedBySharedMemory else { throw ValidationError.vhostUserRequiresSharedMemory(device: device) }
    }

    private func requireQueues(_ count: Int, _ size: UInt16, device: String) throws {
        if count > Int(cpus.boot_vcpus) {
            throw ValidationError.tooManyQueues(device: device, queues: count, bootVCPUs: cpus.boot_vcpus)
        }
        try requireQueueSize(size, device: device)
    }

    private func requireQueueSize(_ size: UInt16, device: String) throws {
        guard size != 0, size & (size - 1) == 0 else { throw ValidationError.invalidQueueSize(device: device, size: size) }
    }
}
