import Glibc
import Synchronization

/// One vCPU (the fd from KVM_CREATE_VCPU) and its shared `kvm_run` page.
///
/// Use it from one dedicated OS thread (KVM requires vCPU ioctls from the thread that runs it to be
/// serialised); only `kick()` and `clearImmediateExit()` may be called from other threads.
public final class VirtualCPU: @unchecked Sendable {
    public let id: UInt32
    /// The vCPU descriptor (closed on deinit).
    public let fd: Int32
    /// The VM is kept alive as long as any of its vCPUs.
    public let vm: VirtualMachine
    /// The mmap'ed `kvm_run` area (KVM_GET_VCPU_MMAP_SIZE bytes; unmapped on deinit).
    public let runState: UnsafeMutablePointer<kvm_run>
    let runSize: Int
    /// Bytes KVM_GET_XSAVE2 needs (KVM_CAP_XSAVE2), at least the legacy 4096 of `kvm_xsave`.
    public let xsaveSize: Int
    /// The thread `kick()` signals (set by `bindToCurrentThread`).
    let boundThread = Mutex<pthread_t?>(nil)

    init(id: UInt32, fd: Int32, vm: VirtualMachine) throws(KVMError) {
        let mapping = mmap(nil, vm.vcpuMmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let mapping, mapping != MAP_FAILED else { throw .mmap(size: vm.vcpuMmapSize, errno: errno) }
        self.id = id
        self.fd = fd
        self.vm = vm
        self.runSize = vm.vcpuMmapSize
        self.runState = mapping.bindMemory(to: kvm_run.self, capacity: 1)
        self.xsaveSize = max(CKVM_XSAVE_LEGACY_SIZE, Int(vm.checkExtension(KVM_CAP_XSAVE2)))
    }

    deinit {
        munmap(UnsafeMutableRawPointer(runState), runSize)
        close(fd)
    }

    /// KVM_RUN until the next exit KVM does not handle itself. EINTR/immediate_exit → `.interrupted`,
    /// EAGAIN → `.retry`; any other errno throws.
    public func run() throws(KVMError) -> VCPUExit {
        if ckvm_ioctl_int(fd, CKVM_RUN, 0) < 0 {
            let e = errno
            switch e {
            case EINTR: return .interrupted
            case EAGAIN: return .retry
            default: throw .ioctl(name: "KVM_RUN", errno: e)
            }
        }
        return decodeExit()
    }

    private func decodeExit() -> VCPUExit {
        let run = runState
        let reason = run.pointee.exit_reason
        switch Int32(bitPattern: reason) {
        case KVM_EXIT_IO:
            let io = run.pointee.io
            let size = Int(io.size)
            let data = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(run) + Int(io.data_offset),
                                                     count: size * Int(io.count))
            if io.direction == UInt8(KVM_EXIT_IO_IN) {
                return io.count == 1 ? .ioIn(port: io.port, data: data)
                                     : .ioInString(port: io.port, size: size, data: data)
            }
            return io.count == 1 ? .ioOut(port: io.port, data: UnsafeRawBufferPointer(data))
                                 : .ioOutString(port: io.port, size: size, data: UnsafeRawBufferPointer(data))
        case KVM_EXIT_MMIO:
            let mmio = run.pointee.mmio
            let data = UnsafeMutableRawBufferPointer(start: ckvm_run_mmio_data(run), count: Int(min(mmio.len, 8)))
            return mmio.is_write != 0 ? .mmioWrite(address: mmio.phys_addr, data: UnsafeRawBufferPointer(data))
                                      : .mmioRead(address: mmio.phys_addr, data: data)
        case KVM_EXIT_HLT:
            return .halt
        case KVM_EXIT_SHUTDOWN:
            return .shutdown
        case KVM_EXIT_INTR:
            return .interrupted
        case KVM_EXIT_SYSTEM_EVENT:
            return .systemEvent(type: run.pointee.system_event.type)
        case KVM_EXIT_INTERNAL_ERROR:
            let internalError = run.pointee.internal
            let count = min(Int(internalError.ndata), 16)
            let details = withUnsafeBytes(of: internalError.data) { Array($0.bindMemory(to: UInt64.self).prefix(count)) }
            return .internalError(suberror: internalError.suberror, details: details)
        case KVM_EXIT_FAIL_ENTRY:
            return .failEntry(reason: run.pointee.fail_entry.hardware_entry_failure_reason)
        default:
            return .unknown(reason: reason)
        }
    }
}
