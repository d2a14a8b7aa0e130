import Glibc

/// Interrupt and notification plumbing: level lines, MSIs, GSI routing, and the eventfd fast paths
/// (irqfd: eventfd → interrupt; ioeventfd: guest I/O → eventfd, with no exit to userspace).
extension VirtualMachine {
    /// KVM_IRQ_LINE: drive GSI `gsi` high or low through the in-kernel irqchip (edge devices pulse it).
    public func setIRQLine(_ gsi: UInt32, level: Bool) throws(KVMError) {
        var line = kvm_irq_level()
        line.irq = gsi
        line.level = level ? 1 : 0
        try ioctlSet(fd, CKVM_IRQ_LINE, line, "KVM_IRQ_LINE")
    }

    /// KVM_IRQFD: writing to `eventFD` injects `gsi`. With `resampleFD`, the GSI is level-triggered: KVM
    /// deasserts it on guest EOI and signals `resampleFD` so the device can re-assert if still pending.
    public func registerIrqfd(eventFD: Int32, gsi: UInt32, resampleFD: Int32? = nil) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        if let resampleFD {
            request.flags = CKVM_IRQFD_FLAG_RESAMPLE
            request.resamplefd = UInt32(bitPattern: resampleFD)
        }
        try ioctlSet(fd, CKVM_IRQFD, request, "KVM_IRQFD")
    }

    public func unregisterIrqfd(eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        request.flags = CKVM_IRQFD_FLAG_DEASSIGN
        try ioctlSet(fd, CKVM_IRQFD, request, "KVM_IRQFD(deassign)")
    }

    /// KVM_IOEVENTFD: a guest write of `length` bytes (1, 2, 4, 8; 0 = any) to `address` (a port when
    /// `isPIO`, else guest-physical MMIO) signals `eventFD` inside the kernel — no `.ioOut`/`.mmioWrite`
    /// exit. With `datamatch`, only writes of that value match (virtio queue notify per queue index).
    public func registerIoeventfd(eventFD: Int32, address: UInt64, length: UInt32, isPIO: Bool,
                                  datamatch: UInt64? = nil) throws(KVMError) {
        try ioeventfd(eventFD: eventFD, address: address, length: length, isPIO: isPIO, datamatch: datamatch,
                      deassign: false)
    }

    /// Removes a registration; the arguments must match the ones it was registered with.
    public func unregisterIoeventfd(eventFD: Int32, address: UInt64, length: UInt32, isPIO: Bool,
                                    datamatch: UInt64? = nil) throws(KVMError) {
        try ioeventfd(eventFD: eventFD, address: address, length: length, isPIO: isPIO, datamatch: datamatch,
                      deassign: true)
    }

    private func ioeventfd(eventFD: Int32, address: UInt64, length: UInt32, isPIO: Bool, datamatch: UInt64?,
                           deassign: Bool) throws(KVMError) {
        guard [0, 1, 2, 4, 8].contains(length) else {
            throw .invalidArgument("ioeventfd length must be 0, 1, 2, 4 or 8 bytes, got \(length)")
        }
        var request = kvm_ioeventfd()
        request.addr = address
        request.len = length
        request.fd = eventFD
        request.flags = (isPIO ? CKVM_IOEVENTFD_FLAG_PIO : 0) | (deassign ? CKVM_IOEVENTFD_FLAG_DEASSIGN : 0)
        if let datamatch {
            request.flags |= CKVM_IOEVENTFD_FLAG_DATAMATCH
            request.datamatch = datamatch
        }
        try ioctlSet(fd, CKVM_IOEVENTFD, request, deassign ? "KVM_IOEVENTFD(deassign)" : "KVM_IOEVENTFD")
    }

    /// KVM_SIGNAL_MSI: inject one MSI (address/data as the device would write them). Returns false when
    /// the guest had it masked/blocked (KVM returns 0), true when delivered.
    @discardableResult
    public func signalMSI(address: UInt64, data: UInt32) throws(KVMError) -> Bool {
        var msi = kvm_msi()
        msi.address_lo = UInt32(truncatingIfNeeded: address)
        msi.address_hi = UInt32(truncatingIfNeeded: address >> 32)
        msi.data = data
        return try ioctlSet(fd, CKVM_SIGNAL_MSI, msi, "KVM_SIGNAL_MSI") > 0
    }

    /// KVM_SET_GSI_ROUTING: replaces the whole routing table. The kernel's default table (legacy IRQs to
    /// PIC and IOAPIC) is lost, so include `GSIRoute.defaultIRQChipRoutes` when adding MSI routes.
    public func setGSIRouting(_ entries: [GSIRoute]) throws(KVMError) {
        let buffer = FlexibleArrayBuffer<kvm_irq_routing_entry>(entriesOffset: CKVM_IRQ_ROUTING_ENTRIES_OFFSET,
                                                                 count: entries.count)
        buffer.headerCount = UInt32(entries.count)
        for (i, route) in entries.enumerated() { buffer.entries[i] = route.raw }
        try ioctlRaw(fd, CKVM_SET_GSI_ROUTING, buffer.raw, "KVM_SET_GSI_ROUTING")
    }
}
