/* checkguest: PCI enumeration through configuration mechanism #1 (bus 0 and the buses behind bridges). */
#include "pci.h"

struct pci_dev pci_devs[PCI_MAX_DEVS];
int pci_ndevs;
static spinlock_t pci_lock;
static u8 bus_seen[256 / 8];

static u32 cfg_addr(u8 bus, u8 dev, u8 fn, u32 off) {
    return ((u32)bus << 16) | ((u32)dev << 11) | ((u32)fn << 8) | (off & 0xfc);
}

static u32 raw_read32(u8 bus, u8 dev, u8 fn, u32 off) {
    spin_lock(&pci_lock);
    u32 v = (u32)syscall3(SYS_PCI_READ, cfg_addr(bus, dev, fn, off), 0, 0);
    spin_unlock(&pci_lock);
    return v;
}

u32 pci_read32(const struct pci_dev *d, u32 off) { return raw_read32(d->bus, d->dev, d->fn, off); }
u16 pci_read16(const struct pci_dev *d, u32 off) { return (u16)(pci_read32(d, off) >> ((off & 2) * 8)); }
u8 pci_read8(const struct pci_dev *d, u32 off) { return (u8)(pci_read32(d, off) >> ((off & 3) * 8)); }

void pci_write(const struct pci_dev *d, u32 off, u32 value, int size) {
    spin_lock(&pci_lock);
    syscall3(SYS_PCI_WRITE, cfg_addr(d->bus, d->dev, d->fn, off) | (off & 3), value, (u64)size);
    spin_unlock(&pci_lock);
}

u32 pci_find_cap(const struct pci_dev *d, u8 id, u32 start) {
    if (!(pci_read16(d, 0x06) & 0x10)) return 0; /* no capability list */
    u32 off = start ? pci_read8(d, start + 1) : pci_read8(d, 0x34);
    for (int guard = 0; off >= 0x40 && guard < 48; guard++) {
        if (pci_read8(d, off) == id) return off;
        off = pci_read8(d, off + 1);
    }
    return 0;
}

u64 pci_bar_addr(const struct pci_dev *d, int i) {
    u32 lo = pci_read32(d, 0x10 + 4 * (u32)i);
    if (lo & 1) return 0;
    u64 a = lo & ~0xful;
    if (((lo >> 1) & 3) == 2 && i < 5) a |= (u64)pci_read32(d, 0x14 + 4 * (u32)i) << 32;
    return a;
}

void pci_enable(const struct pci_dev *d) { pci_write(d, 0x04, pci_read16(d, 0x04) | 0x6, 2); }

const struct pci_dev *pci_find(u16 vendor, u16 device, int nth) {
    for (int i = 0; i < pci_ndevs; i++)
        if (pci_devs[i].vendor == vendor && pci_devs[i].device == device && nth-- == 0) return &pci_devs[i];
    return NULL;
}

static void scan_bus(u8 bus, int depth) {
    if (bus_seen[bus / 8] & (1 << (bus % 8))) return;
    bus_seen[bus / 8] |= (u8)(1 << (bus % 8));
    for (u8 dev = 0; dev < 32; dev++) {
        for (u8 fn = 0; fn < 8; fn++) {
            u32 id = raw_read32(bus, dev, fn, 0);
            if ((id & 0xffff) == 0xffff || (id & 0xffff) == 0) {
                if (fn == 0) break;
                continue;
            }
            u32 cls = raw_read32(bus, dev, fn, 0x08) >> 8;
            u8 header = (u8)(raw_read32(bus, dev, fn, 0x0c) >> 16);
            println("PCI %02x:%02x.%x %04x:%04x class=%06x", bus, dev, fn, id & 0xffff, id >> 16, cls);
            if (pci_ndevs < PCI_MAX_DEVS) {
                struct pci_dev *d = &pci_devs[pci_ndevs++];
                d->bus = bus;
                d->dev = dev;
                d->fn = fn;
                d->header = header;
                d->vendor = (u16)id;
                d->device = (u16)(id >> 16);
                d->class_code = cls;
            }
            if ((header & 0x7f) == 1 && depth < 8) { /* PCI-to-PCI bridge: its secondary bus */
                u8 secondary = (u8)(raw_read32(bus, dev, fn, 0x18) >> 8);
                if (secondary && secondary != bus) scan_bus(secondary, depth + 1);
            }
            if (fn == 0 && !(header & 0x80)) break; /* single-function device */
        }
    }
}

void pci_enumerate(void) {
    char val[8];
    if (cmdline_get("pci", val, sizeof val) && !strncmp(val, "off", 4)) return;
    /* no PCI host bridge answering at 0xcf8 (e.g. microvm): everything reads all-ones */
    scan_bus(0, 0);
    println("PCI-DONE devices=%d", pci_ndevs);
}
