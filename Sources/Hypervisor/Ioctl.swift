import Glibc

// Thin typed wrappers over the shim's ioctl forwarders. Every one retries EINTR (the vCPU kick signal has
// no SA_RESTART, so any ioctl on a vCPU thread may see it) — except KVM_RUN, which reports it instead.

/// An ioctl whose argument is an integer (or none); returns the non-negative result.
@discardableResult
func ioctlValue(_ fd: Int32, _ request: UInt, _ arg: UInt = 0, _ name: String) throws(KVMError) -> Int32 {
    while true {
        let r = ckvm_ioctl_int(fd, request, arg)
        if r >= 0 { return r }
        let e = errno
        if e != EINTR { throw .ioctl(name: name, errno: e) }
    }
}

/// An ioctl whose argument is a pointer to caller-managed memory.
@discardableResult
func ioctlRaw(_ fd: Int32, _ request: UInt, _ pointer: UnsafeMutableRawPointer?, _ name: String) throws(KVMError) -> Int32 {
    while true {
        let r = ckvm_ioctl_ptr(fd, request, pointer)
        if r >= 0 { return r }
        let e = errno
        if e != EINTR { throw .ioctl(name: name, errno: e) }
    }
}

/// An ioctl on the bytes of an array (bitmaps, XSAVE areas). Array's `withUnsafeMutableBytes` only
/// rethrows untyped errors, so the ioctl runs inside it without throwing and the result is thrown after.
@discardableResult
func ioctlBytes<T>(_ fd: Int32, _ request: UInt, _ array: inout [T], _ name: String) throws(KVMError) -> Int32 {
    let result = array.withUnsafeMutableBytes { buffer in
        Result { () throws(KVMError) -> Int32 in try ioctlRaw(fd, request, buffer.baseAddress, name) }
    }
    return try result.get()
}

/// An ioctl that reads into one fixed-size C struct (starts zeroed).
func ioctlGet<T>(_ fd: Int32, _ request: UInt, _ name: String, prepare: (inout T) -> Void = { _ in }) throws(KVMError) -> T {
    let p = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
    defer { p.deallocate() }
    memset(p, 0, MemoryLayout<T>.size)
    let typed = p.assumingMemoryBound(to: T.self)
    prepare(&typed.pointee)
    try ioctlRaw(fd, request, p, name)
    return typed.pointee
}

/// An ioctl that passes one fixed-size C struct (by pointer) to the kernel.
@discardableResult
func ioctlSet<T>(_ fd: Int32, _ request: UInt, _ value: T, _ name: String) throws(KVMError) -> Int32 {
    var copy = value
    return try withUnsafeMutableBytes(of: &copy) { (buffer) throws(KVMError) -> Int32 in
        try ioctlRaw(fd, request, buffer.baseAddress, name)
    }
}

/// A zeroed, 8-byte aligned buffer for the KVM structs that end in a flexible array (kvm_cpuid2, kvm_msrs,
/// kvm_msr_list, kvm_irq_routing): a header, then `count` elements at `entriesOffset`.
struct FlexibleArrayBuffer<Element>: ~Copyable {
    let raw: UnsafeMutableRawPointer
    let entries: UnsafeMutablePointer<Element>
    let count: Int

    init(entriesOffset: Int, count: Int) {
        let bytes = entriesOffset + max(count, 1) * MemoryLayout<Element>.stride
        raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        memset(raw, 0, bytes)
        entries = (raw + entriesOffset).assumingMemoryBound(to: Element.self)
        self.count = count
    }

    /// The first 32-bit word of every such header: nent / nmsrs / nr.
    var headerCount: UInt32 {
        get { raw.load(as: UInt32.self) }
        nonmutating set { raw.storeBytes(of: newValue, as: UInt32.self) }
    }

    deinit { raw.deallocate() }
}
