/* checkguest: virtio-PCI modern capability walk and split virtqueue helper (see virtio.h). */
#include "virtio.h"

int virtio_pci_probe(const struct pci_dev *d, struct virtio_pci *out) {
    memset(out, 0, sizeof *out);
    out->pci = d;
    if (d->vendor != 0x1af4) return 0;
    for (u32 cap = pci_find_cap(d, 0x09, 0); cap; cap = pci_find_cap(d, 0x09, cap)) {
        u8 type = pci_read8(d, cap + 3);
        u8 bar = pci_read8(d, cap + 4);
        u32 off = pci_read32(d, cap + 8);
        u64 base = pci_bar_addr(d, bar);
        if (!base) continue;
        switch (type) {
        case 1: out->common = base + off; break;
        case 2: out->notify = base + off; out->notify_mult = pci_read32(d, cap + 16); break;
        case 3: out->isr = base + off; break;
        case 4: out->device = base + off; break;
        }
    }
    return out->common != 0;
}

int virtq_init(struct virtq *q, u16 index, u16 size) {
    u64 desc_bytes = 16ul * size, avail_bytes = 6ul + 2ul * size, used_bytes = 6ul + 8ul * size;
    u64 mem = pool_alloc(ALIGN_UP(desc_bytes + avail_bytes, 4096) + ALIGN_UP(used_bytes, 4096));
    if (!mem) return 0;
    memset((void *)mem, 0, ALIGN_UP(desc_bytes + avail_bytes, 4096) + ALIGN_UP(used_bytes, 4096));
    q->size = size;
    q->index = index;
    q->desc = (struct virtq_desc *)mem;
    q->avail = (struct virtq_avail *)(mem + desc_bytes);
    q->used = (struct virtq_used *)(mem + ALIGN_UP(desc_bytes + avail_bytes, 4096));
    for (u16 i = 0; i < size; i++) q->desc[i].next = (u16)(i + 1);
    q->free_head = 0;
    q->num_free = size;
    q->last_used = 0;
    return 1;
}

int virtq_add(struct virtq *q, const u64 *addrs, const u32 *lens, int n, int n_writable) {
    if (n <= 0 || q->num_free < n) return -1;
    u16 head = q->free_head, i = head, last = head;
    for (int k = 0; k < n; k++) {
        struct virtq_desc *dsc = &q->desc[i];
        dsc->addr = addrs[k];
        dsc->len = lens[k];
        dsc->flags = (u16)((k < n - 1 ? VIRTQ_DESC_F_NEXT : 0) | (k >= n - n_writable ? VIRTQ_DESC_F_WRITE : 0));
        last = i;
        i = dsc->next;
    }
    q->free_head = q->desc[last].next;
    q->num_free = (u16)(q->num_free - n);
    q->avail->ring[q->avail->idx % q->size] = head;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->avail->idx++;
    return head;
}

void virtq_kick(struct virtq *q) {
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (q->notify) *q->notify = q->index;
}

int virtq_get_used(struct virtq *q, u32 *len) {
    if (READ_ONCE(q->used->idx) == q->last_used) return -1;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    struct virtq_used_elem *e = &q->used->ring[q->last_used % q->size];
    q->last_used++;
    u16 id = (u16)e->id, i = id;
    int n = 1;
    while (q->desc[i].flags & VIRTQ_DESC_F_NEXT) {
        i = q->desc[i].next;
        n++;
    }
    q->desc[i].next = q->free_head;
    q->free_head = id;
    q->num_free = (u16)(q->num_free + n);
    if (len) *len = e->len;
    return id;
}
