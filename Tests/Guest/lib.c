/*
 * checkguest: freestanding library (compiled -mgeneral-regs-only so the CPL0 panic path can use it too):
 * string functions, a small printf, the 8250 UART output and whole-line printing under a lock.
 */
#include "guest.h"

void *memset(void *d, int c, size_t n) {
    u8 *p = d;
    while (n--) *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n) {
    u8 *p = d;
    const u8 *q = s;
    while (n--) *p++ = *q++;
    return d;
}

void *memmove(void *d, const void *s, size_t n) {
    u8 *p = d;
    const u8 *q = s;
    if (p < q) {
        while (n--) *p++ = *q++;
    } else {
        while (n--) p[n] = q[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n) {
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q) return *p < *q ? -1 : 1;
    return 0;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n) {
    for (; n; n--, a++, b++) {
        if (*a != *b) return (u8)*a < (u8)*b ? -1 : 1;
        if (!*a) return 0;
    }
    return 0;
}

int str_starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

int parse_u64(const char *s, const char **end, u64 *out) {
    u64 v = 0;
    int any = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        for (;; s++) {
            int d;
            if (*s >= '0' && *s <= '9') d = *s - '0';
            else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
            else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
            else break;
            v = v * 16 + (u64)d;
            any = 1;
        }
    } else {
        for (; *s >= '0' && *s <= '9'; s++) {
            v = v * 10 + (u64)(*s - '0');
            any = 1;
        }
    }
    if (end) *end = s;
    *out = v;
    return any;
}

/* ---------------------------------------------------------------- formatting */
struct out {
    char *buf;
    int size, len;
};

static void put(struct out *o, char c) {
    if (o->len + 1 < o->size) o->buf[o->len] = c;
    o->len++;
}

static void put_num(struct out *o, u64 v, int base, int neg, int width, int zero, int left, int plus) {
    char tmp[24];
    int n = 0;
    do {
        int d = (int)(v % (u64)base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= (u64)base;
    } while (v);
    char sign = neg ? '-' : (plus ? '+' : 0);
    int total = n + (sign ? 1 : 0);
    if (!left && !zero)
        for (; total < width; total++) put(o, ' ');
    if (sign) put(o, sign);
    if (!left && zero)
        for (; total < width; total++) put(o, '0');
    while (n) put(o, tmp[--n]);
    if (left)
        for (; total < width; total++) put(o, ' ');
}

int vformat(char *buf, int size, const char *fmt, va_list ap) {
    struct out o = { buf, size, 0 };
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        int zero = 0, left = 0, plus = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '0') zero = 1;
            else if (*fmt == '-') left = 1;
            else if (*fmt == '+') plus = 1;
            else break;
        }
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') { lng++; fmt++; }
        switch (*fmt) {
        case 'd':
        case 'i': {
            s64 v = lng ? va_arg(ap, s64) : va_arg(ap, int);
            put_num(&o, v < 0 ? (u64)-v : (u64)v, 10, v < 0, width, zero, left, plus);
            break;
        }
        case 'u': {
            u64 v = lng ? va_arg(ap, u64) : va_arg(ap, unsigned);
            put_num(&o, v, 10, 0, width, zero, left, plus);
            break;
        }
        case 'x': {
            u64 v = lng ? va_arg(ap, u64) : va_arg(ap, unsigned);
            put_num(&o, v, 16, 0, width, zero, left, 0);
            break;
        }
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_num(&o, (u64)va_arg(ap, void *), 16, 0, width, zero, left, 0);
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            int n = (int)strlen(s);
            if (!left)
                for (; n < width; n++) put(&o, ' ');
            while (*s) put(&o, *s++);
            if (left)
                for (; n < width; n++) put(&o, ' ');
            break;
        }
        case '%':
            put(&o, '%');
            break;
        case 0:
            fmt--;
            break;
        default:
            put(&o, '%');
            put(&o, *fmt);
        }
    }
    if (o.size > 0) o.buf[o.len < o.size ? o.len : o.size - 1] = 0;
    return o.len;
}

int format(char *buf, int size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* ---------------------------------------------------------------- 8250 UART at 0x3f8 */
#define COM1 0x3f8
int uart_fifo = 1; /* bytes we may write per THRE */

void serial_init(void) {
    outb(COM1 + 1, 0x00); /* IER off */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xc7); /* FIFO on, clear, 14-byte threshold */
    outb(COM1 + 4, 0x0b); /* DTR RTS OUT2 */
    uart_fifo = (inb(COM1 + 2) & 0xc0) == 0xc0 ? 16 : 1;
}

/* At CPL0 (the syscall handler or the panic path): wait for THRE, then one `rep outsb` per FIFO load,
 * which KVM turns into a single exit per chunk. */
void serial_write_direct(const char *s, int n) {
    while (n > 0) {
        for (int spin = 0; spin < 1000 && !(raw_inb(COM1 + 5) & 0x20); spin++) cpu_relax();
        int chunk = n < uart_fifo ? n : uart_fifo;
        const char *p = s;
        u64 cnt = (u64)chunk;
        __asm__ __volatile__("rep outsb" : "+S"(p), "+c"(cnt) : "d"((u16)COM1) : "memory");
        s += chunk;
        n -= chunk;
    }
}

void serial_write(const char *s, int n) {
    if (at_cpl0()) serial_write_direct(s, n);
    else syscall3(SYS_SERIAL_WRITE, (u64)s, (u64)n, 0);
}

spinlock_t print_lock;

int serial_crlf; /* cmdline `crlf`: end lines with \r\n (for terminals) instead of \n */

static int line_format(char *buf, int size, const char *fmt, va_list ap) {
    int n = vformat(buf, size - 2, fmt, ap);
    if (n > size - 3) n = size - 3;
    if (serial_crlf) buf[n++] = '\r';
    buf[n++] = '\n';
    return n;
}

void println(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = line_format(buf, sizeof buf, fmt, ap);
    va_end(ap);
    spin_lock(&print_lock);
    serial_write(buf, n);
    spin_unlock(&print_lock);
}

/* For the panic path at CPL0: do not wait forever for a lock this CPU may hold. */
void println_locked_bounded(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = line_format(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int got = 0;
    for (int i = 0; i < 20000 && !(got = spin_trylock(&print_lock)); i++) cpu_relax();
    if (!got) serial_write("\n", 1);
    serial_write(buf, n);
    if (got) spin_unlock(&print_lock);
}
