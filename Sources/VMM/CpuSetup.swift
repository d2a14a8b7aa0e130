import Glibc
import Boot
import Hypervisor
import Memory

/// x86-64 vCPU configuration at boot: CPUID, registers for each entry path, FPU, boot MSRs, LAPIC LINTs.
enum CpuSetup {
    // MSR numbers (Intel SDM vol. 4).
    static let msrSysenterCS: UInt32 = 0x174, msrSysenterESP: UInt32 = 0x175, msrSysenterEIP: UInt32 = 0x176
    static let msrSTAR: UInt32 = 0xC000_0081, msrLSTAR: UInt32 = 0xC000_0082, msrCSTAR: UInt32 = 0xC000_0083
    static let msrSyscallMask: UInt32 = 0xC000_0084, msrKernelGSBase: UInt32 = 0xC000_0102
    static let msrTSC: UInt32 = 0x10, msrMiscEnable: UInt32 = 0x1A0, msrMTRRDefType: UInt32 = 0x2FF

    /// Whether this host's KVM is KVM-PVM, whose instruction emulator runs guest kernel code and cannot
    /// execute `cmpxchg16b` or `xsave`/`xrstor`: hiding those features lets real kernels get further.
    static let hostIsPVM: Bool = {
        var st = stat()
        return stat("/sys/module/kvm_pvm", &st) == 0
    }()

    /// The guest's CPUID: what KVM supports, with per-vCPU APIC ids and a topology of `maxVCPUs`
    /// single-threaded cores in one package (unless a topology is configured).
    static func cpuid(base: [CPUIDEntry], vcpu: UInt32, maxVCPUs: UInt32,
                      threadsPerCore: UInt32 = 1, hideForEmulator: Bool = hostIsPVM) -> [CPUIDEntry] {
        var entries: [CPUIDEntry] = []
        let logical = max(maxVCPUs, 1)
        for var e in base {
            switch e.function {
            case 0x1:
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package; EDX bit 28 HTT.
                e.ebx = (e.ebx & 0x0000_FFFF) | (vcpu << 24) | (min(logical, 255) << 16)
                e.edx |= 1 << 28
                if hideForEmulator {
                    e.ecx &= ~(UInt32(1) << 13)   // CMPXCHG16B
                    e.ecx &= ~(UInt32(1) << 26)   // XSAVE
                    e.ecx &= ~(UInt32(1) << 27)   // OSXSAVE
                    e.ecx &= ~(UInt32(1) << 28)   // AVX (needs XSAVE)
                    e.ecx &= ~(UInt32(1) << 12)   // FMA
                    e.ecx &= ~(UInt32(1) << 29)   // F16C
                }
            case 0x4:
                // EAX[31:26] cores per package − 1, EAX[25:14] logical processors sharing this cache − 1.
                let cores = max(logical / threadsPerCore, 1)
                e.eax = (e.eax & 0x0000_3FFF) | ((cores - 1) << 26)
                let level = (e.eax >> 5) & 0x7
                let sharing: UInt32 = level >= 3 ? logical - 1 : threadsPerCore - 1
                e.eax = (e.eax & ~(UInt32(0xFFF) << 14)) | (sharing << 14)
            case 0x7 where e.index == 0 && hideForEmulator:
                e.ebx &= ~(UInt32(1) << 5)    // AVX2
                e.ebx &= ~(UInt32(0x1F) << 16) // AVX-512 F/DQ/RDSEED-adjacent bits
                e.ebx &= ~(UInt32(1) << 30)   // AVX512BW
                e.ebx &= ~(UInt32(1) << 31)   // AVX512VL
                e.ecx &= ~(UInt32(1) << 1)    // AVX512_VBMI
            case 0xD where hideForEmulator:
                continue                       // no XSAVE leaf when XSAVE is hidden
            case 0xB, 0x1F:
                // Extended topology: EDX = x2APIC id; level 0 = SMT, level 1 = core.
                e.edx = vcpu
                let shift: UInt32 = threadsPerCore > 1 ? UInt32((threadsPerCore - 1).bitWidth - (threadsPerCore - 1).leadingZeroBitCount) : 0
                let coreShift = UInt32(Int(logical - 1).bitWidth - Int(logical - 1).leadingZeroBitCount)
                switch e.index {
                case 0: e.eax = shift; e.ebx = threadsPerCore; e.ecx = (1 << 8) | 0
                case 1: e.eax = max(coreShift, shift); e.ebx = logical; e.ecx = (2 << 8) | 1
                default: e.eax = 0; e.ebx = 0; e.ecx = e.index
                }
            default:
                break
            }
            entries.append(e)
        }
        return entries
    }

    /// A KVM segment register from the loader's descriptor (the same bits the boot GDT holds in memory).
    static func segment(_ r: SegmentRegister) -> kvm_segment {
        var s = kvm_segment()
        let d = r.descriptor
        s.base = UInt64(d.base)
        s.limit = d.limit
        s.selector = r.selector
        s.type = d.type
        s.present = d.present ? 1 : 0
        s.dpl = d.dpl
        s.db = d.defaultBig ? 1 : 0
        s.s = d.codeOrData ? 1 : 0
        s.l = d.long ? 1 : 0
        s.g = d.granularity ? 1 : 0
        s.avl = d.available ? 1 : 0
        return s
    }

    /// The boot vCPU's registers for the loaded kernel's entry path (PVH or Linux 64-bit).
    static func configureBoot(_ vcpu: VirtualCPU, entry: EntryPoint) throws {
        let boot = entry.registers
        var sregs = try vcpu.getSregs()
        sregs.cs = segment(boot.code)
        let data = segment(boot.data)
        sregs.ds = data; sregs.es = data; sregs.fs = data; sregs.gs = data; sregs.ss = data
        sregs.tr = segment(boot.task)
        sregs.gdt.base = boot.gdt.base
        sregs.gdt.limit = boot.gdt.limit
        sregs.idt.base = boot.idt.base
        sregs.idt.limit = boot.idt.limit
        sregs.cr0 = boot.cr0
        sregs.cr3 = boot.cr3
        sregs.cr4 = boot.cr4
        sregs.efer = boot.efer
        var regs = kvm_regs()
        regs.rip = boot.rip
        regs.rsp = boot.rsp
        regs.rbp = boot.rbp
        regs.rsi = boot.rsi
        regs.rbx = boot.rbx
        regs.rflags = boot.rflags
        try vcpu.setSregs(sregs)
        try vcpu.setRegs(regs)
    }

    /// FPU control word and MXCSR as after FNINIT / reset.
    static func configureFPU(_ vcpu: VirtualCPU) throws {
        var fpu = kvm_fpu()
        fpu.fcw = 0x37F
        fpu.mxcsr = 0x1F80
        try vcpu.setFPU(fpu)
    }

    /// The MSRs a boot loader leaves set (CH's list): syscall MSRs cleared, fast strings, WB default MTRR.
    static func configureMSRs(_ vcpu: VirtualCPU) throws {
        let msrs: [(UInt32, UInt64)] = [
            (msrSysenterCS, 0), (msrSysenterESP, 0), (msrSysenterEIP, 0),
            (msrSTAR, 0), (msrCSTAR, 0), (msrKernelGSBase, 0), (msrSyscallMask, 0), (msrLSTAR, 0),
            (msrTSC, 0), (msrMiscEnable, 1), (msrMTRRDefType, (1 << 11) | 6),
        ]
        _ = try vcpu.setMSRs(msrs)
    }

    /// LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as firmware leaves them.
    static func configureLAPIC(_ vcpu: VirtualCPU) throws {
        var lapic = try vcpu.getLAPIC()
        func setDeliveryMode(_ offset: Int, _ mode: UInt32) {
            withUnsafeMutableBytes(of: &lapic.regs) { raw in
                let old = raw.load(fromByteOffset: offset, as: UInt32.self)
                raw.storeBytes(of: (old & ~UInt32(0x700)) | (mode << 8), toByteOffset: offset, as: UInt32.self)
            }
        }
        setDeliveryMode(0x350, 0x7)   // LVT LINT0: ExtINT
        setDeliveryMode(0x360, 0x4)   // LVT LINT1: NMI
        try vcpu.setLAPIC(lapic)
    }
}
