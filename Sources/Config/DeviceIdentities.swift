extension VmConfig {
    /// The config with an id on every PCI device that lacks one, named as Cloud Hypervisor names them:
    /// a prefix and one counter shared by all kinds (`_disk0`, `_net1`, `_vsock2`), skipping ids in
    /// use; and a random locally administered MAC on every net device without one. CH records both in
    /// the VM's config, so `vm.info` shows them and a reboot, snapshot or migration keeps them.
    public func withGeneratedDeviceIdentities() -> VmConfig {
        var copy = self
        var used = Set(allDeviceIDs)
        var counter = 0
        func next(_ prefix: String) -> String {
            while used.contains("\(prefix)\(counter)") { counter += 1 }
            defer { counter += 1 }
            let id = "\(prefix)\(counter)"
            used.insert(id)
            return id
        }
        func fill<T: PciDeviceConfig>(_ list: inout [T]?, _ prefix: String) {
            guard var items = list else { return }
            for i in items.indices where items[i].pci_common.id == nil { items[i].pci_common.id = next(prefix) }
            list = items
        }
        fill(&copy.disks, "_disk")
        fill(&copy.net, "_net")
        fill(&copy.fs, "_fs")
        fill(&copy.pmem, "_pmem")
        if var nets = copy.net {
            for i in nets.indices where nets[i].mac == nil { nets[i].mac = MacAddress.localRandom() }
            copy.net = nets
        }
        if copy.vsock != nil && copy.vsock?.pci_common.id == nil { copy.vsock?.pci_common.id = next("_vsock") }
        return copy
    }

    private var allDeviceIDs: [String] {
        let lists: [[String?]] = [
            (disks ?? []).map(\.pci_common.id), (net ?? []).map(\.pci_common.id), (fs ?? []).map(\.pci_common.id),
            (pmem ?? []).map(\.pci_common.id), [vsock?.pci_common.id],
        ]
        return lists.flatMap { $0.compactMap { $0 } }
    }
}
