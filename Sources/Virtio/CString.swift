extension String {
    /// The text of a NUL-terminated C buffer filled by the kernel or libc (an interface or pty name).
    init(nulTerminated chars: [CChar]) {
        self.init(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
