import Foundation

/// Running the checkguest (or any PVH ELF) under QEMU+KVM: the reference VMM our own is compared against.
public enum QEMU {
    public static var binary: String? { Paths.which("qemu-system-x86_64") }

    /// Why QEMU+KVM cannot run here (nil when it can).
    public static var unavailableReason: String? {
        if binary == nil { return "qemu-system-x86_64 is not installed (apt package qemu-system-x86)" }
        if !Paths.kvmUsable { return "/dev/kvm cannot be opened read-write" }
        if !FileManager.default.fileExists(atPath: Paths.checkguest.path) {
            return "the checkguest is not built: run `make -C Tests/Guest`"
        }
        return nil
    }

    /// Whether a missing prerequisite must fail the test instead of skipping it (CI=true).
    public static var mustRun: Bool {
        let ci = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return ci == "true" || ci == "1"
    }

    public enum Machine: String, Sendable {
        case q35
        case microvm
    }

    public struct Options: Sendable {
        public var machine: Machine
        public var cpus: Int
        public var memoryMiB: Int
        /// The guest command line (`workload=…` etc.).
        public var append: String
        /// Back guest RAM with this file (shared), so a test can read and write guest memory directly:
        /// below the PCI hole, guest-physical address == file offset.
        public var memoryFile: String?
        public var kernel: String
        public var extraArguments: [String]

        public init(machine: Machine = .q35, cpus: Int = 2, memoryMiB: Int = 256, append: String = "",
                    memoryFile: String? = nil, kernel: String = Paths.checkguest.path, extraArguments: [String] = []) {
            self.machine = machine
            self.cpus = cpus
            self.memoryMiB = memoryMiB
            self.append = append
            self.memoryFile = memoryFile
            self.kernel = kernel
            self.extraArguments = extraArguments
        }
    }

    /// The command line (without the binary): the issue's reference invocation plus optional file-backed RAM.
    public static func arguments(_ o: Options) -> [String] {
        var machine = o.machine.rawValue
        var args = ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
        if let file = o.memoryFile {
            args += ["-object", "memory-backend-file,id=m0,size=\(o.memoryMiB)M,mem-path=\(file),share=on"]
            machine += ",memory-backend=m0"
        }
        args += ["-M", machine, "-smp", "\(o.cpus)", "-m", "\(o.memoryMiB)",
                 "-kernel", o.kernel, "-append", o.append,
                 "-serial", "stdio", "-display", "none", "-nodefaults"]
        return args + o.extraArguments
    }

    /// Starts QEMU with the guest's serial console on the process's stdin/stdout.
    public static func launch(_ o: Options) throws -> GuestProcess {
        guard let qemu = binary else { throw QEMUError.notInstalled }
        return try GuestProcess(executable: qemu, arguments: arguments(o))
    }

    public enum QEMUError: Error { case notInstalled }
}

/// Direct access to a guest's RAM through its backing file (see `QEMU.Options.memoryFile`).
public struct GuestMemoryFile {
    public let path: String

    public init(path: String) { self.path = path }

    /// A fresh path in /dev/shm (tmpfs) for `QEMU.Options.memoryFile`.
    public static func temporaryPath(tag: String = "checkguest") -> String {
        "/dev/shm/\(tag)-\(getpid())-\(UInt32.random(in: 0 ... .max)).mem"
    }

    public func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard n == count else { throw POSIXError(.EIO) }
        return buf
    }

    public func write(_ bytes: [UInt8], at offset: UInt64) throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes.count, off_t(offset)) }
        guard n == bytes.count else { throw POSIXError(.EIO) }
    }

    public func remove() { unlink(path) }
}

/// A QEMU human monitor (HMP) on a UNIX socket (`-monitor unix:PATH,server=on,wait=off`), for tests that
/// snapshot or migrate a guest under QEMU.
public final class QEMUMonitor {
    private let fd: Int32

    public static func arguments(socket path: String) -> [String] {
        ["-monitor", "unix:\(path),server=on,wait=off"]
    }

    /// Connects (retrying while QEMU starts) and reads the banner up to the first prompt.
    public init(socket path: String, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard s >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw POSIXError(.ENAMETOOLONG) }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
                }
            }
            if ok {
                fd = s
                break
            }
            close(s)
            if Date() > deadline { throw POSIXError(.ECONNREFUSED) }
            usleep(50_000)
        }
        _ = try readUntilPrompt(timeout: timeout)
    }

    deinit { close(fd) }

    /// Sends one command line and returns what the monitor printed before the next prompt.
    @discardableResult
    public func command(_ line: String, timeout: TimeInterval = 30) throws -> String {
        let data = Array((line + "\n").utf8)
        var sent = 0
        while sent < data.count {
            let n = data[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            sent += n
        }
        return try readUntilPrompt(timeout: timeout)
    }

    private func readUntilPrompt(timeout: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            if let text = String(bytes: out, encoding: .utf8), text.hasSuffix("(qemu) ") { return text }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw POSIXError(.ETIMEDOUT) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000))
            if r < 0 && errno != EINTR { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            if r <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return String(decoding: out, as: UTF8.self) } // QEMU went away (e.g. after `quit`)
            out += buf[0 ..< n]
        }
    }
}

/// QEMU command-line pieces for modern-only virtio-PCI devices (`disable-legacy=on`), as the checkguest's
/// drivers expect them (vendor 0x1af4, device 0x1040 + type, like Cloud Hypervisor's).
public enum QEMUVirtio {
    /// A raw disk image as virtio-blk (`serial=` answers VIRTIO_BLK_T_GET_ID; `readOnly` offers VIRTIO_BLK_F_RO).
    public static func blk(image: String, id: String = "vblk0", readOnly: Bool = false,
                           serial: String? = nil) -> [String] {
        ["-drive", "file=\(image),format=raw,if=none,id=\(id)\(readOnly ? ",readonly=on" : "")",
         "-device", "virtio-blk-pci,drive=\(id),disable-legacy=on\(serial.map { ",serial=\($0)" } ?? "")"]
    }

    /// virtio-net on an existing TAP interface (see `TapDevice`).
    public static func net(tap: String, mac: String, id: String = "vnet0") -> [String] {
        ["-netdev", "tap,id=\(id),ifname=\(tap),script=no,downscript=no",
         "-device", "virtio-net-pci,netdev=\(id),disable-legacy=on,mac=\(mac)"]
    }

    /// virtio-rng fed from the host's /dev/urandom.
    public static func rng(id: String = "vrng0") -> [String] {
        ["-object", "rng-random,id=\(id),filename=/dev/urandom", "-device", "virtio-rng-pci,rng=\(id),disable-legacy=on"]
    }

    /// virtio-serial with one virtconsole (port 0) on a pipe chardev: QEMU reads `BASE.in` and writes
    /// `BASE.out` (FIFOs, see `ConsolePipe`). QEMU 7.2's file chardev cannot take input, a pipe can.
    public static func console(pipeBase: String, id: String = "vcon0") -> [String] {
        ["-device", "virtio-serial-pci,disable-legacy=on", "-chardev", "pipe,id=\(id),path=\(pipeBase)",
         "-device", "virtconsole,chardev=\(id)"]
    }
}

/// The two FIFOs of a QEMU pipe chardev (`BASE.in` → guest, guest → `BASE.out`). QEMU opens both
/// read-write, so writes do not block while nobody reads and nothing is lost before the test reads.
public final class ConsolePipe {
    public let base: String
    private var received: [UInt8] = []
    private var outFD: Int32 = -1

    public init(base: String = "/tmp/checkguest-vcon-\(getpid())-\(UInt32.random(in: 0 ... .max))") throws {
        self.base = base
        for path in [base + ".in", base + ".out"] {
            unlink(path)
            guard mkfifo(path, 0o600) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
    }

    deinit { remove() }

    public func remove() {
        if outFD >= 0 { close(outFD) }
        outFD = -1
        unlink(base + ".in")
        unlink(base + ".out")
    }

    /// Everything the guest wrote so far (reads what is in the FIFO without blocking).
    public func output() -> String {
        if outFD < 0 { outFD = open(base + ".out", O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        if outFD >= 0 {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buf.withUnsafeMutableBytes { read(outFD, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                received += buf[0 ..< n]
            }
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Waits until the guest's output contains `text`; returns whether it did.
    public func waitFor(_ text: String, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output().contains(text) { return true }
            usleep(20_000)
        }
        return output().contains(text)
    }

    /// Sends bytes to the guest's console receive queue.
    public func send(_ text: String) throws {
        let fd = open(base + ".in", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}
