/* checkguest: PCI configuration access (0xcf8/0xcfc through syscalls) and the devices found at boot. */
#ifndef PCI_H
#define PCI_H
#include "guest.h"

struct pci_dev {
    u8 bus, dev, fn, header;
    u16 vendor, device;
    u32 class_code; /* class << 16 | subclass << 8 | prog-if */
};

#define PCI_MAX_DEVS 64
extern struct pci_dev pci_devs[PCI_MAX_DEVS];
extern int pci_ndevs;

u32 pci_read32(const struct pci_dev *d, u32 off);
u16 pci_read16(const struct pci_dev *d, u32 off);
u8 pci_read8(const struct pci_dev *d, u32 off);
void pci_write(const struct pci_dev *d, u32 off, u32 value, int size);
/* Offset of the first capability with this id after `start` (0 = from the list head), or 0. */
u32 pci_find_cap(const struct pci_dev *d, u8 id, u32 start);
/* BAR i as an address (64-bit BARs combined), 0 if unset or I/O. */
u64 pci_bar_addr(const struct pci_dev *d, int i);
void pci_enable(const struct pci_dev *d); /* memory + bus master */
const struct pci_dev *pci_find(u16 vendor, u16 device, int nth);
#endif
