#pragma once
/* The only C in the VMM: what Swift cannot call or import directly (variadic ioctl, _IO* macros,
 * enum-based flag macros, signal-number functions, memfd_create, addresses of fields inside anonymous
 * unions, atomic stores into the shared kvm_run page). Everything here is a one-line forwarder or a
 * constant; the KVM structs themselves (kvm_regs, kvm_run, ...) come from <linux/kvm.h> as-is. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/kvm.h>

/* memfd_create(2): not exported by Swift's Glibc module. */
int ckvm_memfd_create(const char *name, unsigned int flags);
static const unsigned int CKVM_MFD_CLOEXEC = 0x0001U;
static const unsigned int CKVM_MFD_HUGETLB = 0x0004U;

/* eventfd(2): Swift's Glibc module does not include <sys/eventfd.h>; irqfd and ioeventfd are built on it,
 * so import it from here (eventfd() itself is then callable from Swift). Its flags are enum+macro pairs. */
#include <sys/eventfd.h>
static const int CKVM_EFD_CLOEXEC = EFD_CLOEXEC;
static const int CKVM_EFD_NONBLOCK = EFD_NONBLOCK;
static const int CKVM_EFD_SEMAPHORE = EFD_SEMAPHORE;

/* ioctl(2) is variadic, so Swift cannot call it. Both return ioctl's result; errno is left as set. */
int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg);
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg);

/* SIGRTMIN is a glibc function call hidden behind a macro. */
int ckvm_sigrtmin(void);

/* kvm_run.immediate_exit is written by a kicking thread while the vCPU thread may be entering KVM_RUN:
 * store it atomically (seq_cst) so the store is visible before the signal is sent. */
void ckvm_set_immediate_exit(struct kvm_run *run, uint8_t value);
/* kvm_run.mmio.data lives in an anonymous union: Swift can read it but not take its address. */
uint8_t *ckvm_run_mmio_data(struct kvm_run *run);

/* Offsets of flexible array members (Swift does not import them). */
static const size_t CKVM_CPUID2_ENTRIES_OFFSET = offsetof(struct kvm_cpuid2, entries);
static const size_t CKVM_MSRS_ENTRIES_OFFSET = offsetof(struct kvm_msrs, entries);
static const size_t CKVM_MSR_LIST_INDICES_OFFSET = offsetof(struct kvm_msr_list, indices);
static const size_t CKVM_IRQ_ROUTING_ENTRIES_OFFSET = offsetof(struct kvm_irq_routing, entries);
static const size_t CKVM_XSAVE_LEGACY_SIZE = sizeof(struct kvm_xsave);

/* Flags built from enums or shifts, which Swift does not import. */
static const uint32_t CKVM_MEM_LOG_DIRTY_PAGES = KVM_MEM_LOG_DIRTY_PAGES;
static const uint32_t CKVM_MEM_READONLY = KVM_MEM_READONLY;
static const uint32_t CKVM_IRQFD_FLAG_DEASSIGN = KVM_IRQFD_FLAG_DEASSIGN;
static const uint32_t CKVM_IRQFD_FLAG_RESAMPLE = KVM_IRQFD_FLAG_RESAMPLE;
static const uint32_t CKVM_IOEVENTFD_FLAG_DATAMATCH = KVM_IOEVENTFD_FLAG_DATAMATCH;
static const uint32_t CKVM_IOEVENTFD_FLAG_PIO = KVM_IOEVENTFD_FLAG_PIO;
static const uint32_t CKVM_IOEVENTFD_FLAG_DEASSIGN = KVM_IOEVENTFD_FLAG_DEASSIGN;
static const uint64_t CKVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
static const uint64_t CKVM_DIRTY_LOG_INITIALLY_SET = KVM_DIRTY_LOG_INITIALLY_SET;

/* ioctl request numbers (_IO/_IOR/_IOW/_IOWR macros are not imported). */
/* system (/dev/kvm) */
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;
static const unsigned long CKVM_GET_MSR_FEATURE_INDEX_LIST = KVM_GET_MSR_FEATURE_INDEX_LIST;
/* VM */
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_IRQFD = KVM_IRQFD;
static const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long CKVM_SIGNAL_MSI = KVM_SIGNAL_MSI;
static const unsigned long CKVM_SET_GSI_ROUTING = KVM_SET_GSI_ROUTING;
static const unsigned long CKVM_GET_DIRTY_LOG = KVM_GET_DIRTY_LOG;
static const unsigned long CKVM_CLEAR_DIRTY_LOG = KVM_CLEAR_DIRTY_LOG;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
static const unsigned long CKVM_GET_CLOCK = KVM_GET_CLOCK;
static const unsigned long CKVM_SET_CLOCK = KVM_SET_CLOCK;
static const unsigned long CKVM_GET_IRQCHIP = KVM_GET_IRQCHIP;
static const unsigned long CKVM_SET_IRQCHIP = KVM_SET_IRQCHIP;
static const unsigned long CKVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CKVM_SET_PIT2 = KVM_SET_PIT2;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
/* vCPU */
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CKVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CKVM_GET_XSAVE2 = KVM_GET_XSAVE2;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_XCRS = KVM_GET_XCRS;
static const unsigned long CKVM_SET_XCRS = KVM_SET_XCRS;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CKVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CKVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;
static const unsigned long CKVM_SET_TSC_KHZ = KVM_SET_TSC_KHZ;
static const unsigned long CKVM_GET_CPUID2 = KVM_GET_CPUID2;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_KVMCLOCK_CTRL = KVM_KVMCLOCK_CTRL;
static const unsigned long CKVM_NMI = KVM_NMI;
static const unsigned long CKVM_INTERRUPT = KVM_INTERRUPT;

/* Opens a pseudo-terminal master (posix_openpt/grantpt/unlockpt need _GNU_SOURCE, hidden from Swift).
 * Writes the slave's path into `name`; returns the master fd or -1 with errno set. */
int ckvm_open_pty(char *name, size_t len);

/* Atomic word operations for bitmaps shared between device threads and the migration thread. */
static inline void ckvm_atomic_or_u64(uint64_t *p, uint64_t v) { __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
static inline uint64_t ckvm_atomic_xchg_u64(uint64_t *p, uint64_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }

/* epoll: not in Swift's Glibc module, and struct epoll_event is packed on x86-64; these keep the
 * packed layout on the C side. Events are EPOLLIN/OUT/ERR/HUP bits (values below). */
#define CKVM_EPOLLIN 0x001u
#define CKVM_EPOLLOUT 0x004u
#define CKVM_EPOLLERR 0x008u
#define CKVM_EPOLLHUP 0x010u
int ckvm_epoll_create(void);
int ckvm_epoll_ctl(int epfd, int op, int fd, uint32_t events); /* op: 1 add, 2 del, 3 mod */
int ckvm_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms);

/* Disk images: O_DIRECT and fallocate(2) need _GNU_SOURCE, which Swift's Glibc module does not define.
 * The FALLOC_FL_* flags come from the kernel's uapi header. */
#include <linux/falloc.h>
extern const int CKVM_O_DIRECT;
int ckvm_fallocate(int fd, int mode, int64_t offset, int64_t length);

/* TAP interfaces for virtio-net: TUNSETIFF and the interface ioctls take struct ifreq, a union Swift can
 * fill only awkwardly; these take plain values. Each returns 0 or -1 with errno set. */
#define CKVM_IFF_TAP 0x0002
#define CKVM_IFF_NO_PI 0x1000
#define CKVM_IFF_VNET_HDR 0x4000
#define CKVM_IFF_MULTI_QUEUE 0x0100
#define CKVM_IFNAMSIZ 16
/* TUNSETIFF on an open /dev/net/tun with `flags`; `name` (may contain %d) in, the resolved name out
 * (CKVM_IFNAMSIZ bytes). */
int ckvm_tun_set_iff(int fd, const char *name, short flags, char *name_out);
/* TUNSETQUEUE: attach (1) or detach (0) one queue of a multi-queue TAP. */
int ckvm_tun_set_queue(int fd, int attach);
/* TUNSETVNETHDRSZ and TUNSETOFFLOAD (TUN_F_* bits below). */
int ckvm_tun_set_vnet_hdr_size(int fd, int size);
int ckvm_tun_set_offload(int fd, unsigned int offload);
#define CKVM_TUN_F_CSUM 0x01u
#define CKVM_TUN_F_TSO4 0x02u
#define CKVM_TUN_F_TSO6 0x04u
#define CKVM_TUN_F_TSO_ECN 0x08u
#define CKVM_TUN_F_UFO 0x10u
/* Host-side interface settings through an AF_INET socket: IPv4 address and netmask (network byte order),
 * MAC, MTU, and IFF_UP|IFF_RUNNING (left alone when already up). */
int ckvm_netif_set_ipv4(const char *ifname, uint32_t addr, uint32_t mask);
int ckvm_netif_set_mac(const char *ifname, const uint8_t mac[6]);
int ckvm_netif_set_mtu(const char *ifname, int mtu);
int ckvm_netif_up(const char *ifname);

/* accept4(2) needs _GNU_SOURCE: accepts a connection as a non-blocking, close-on-exec fd. */
int ckvm_accept_nonblock(int listen_fd);

/* Snapshot restore: how many pages of [offset, offset+length) of a file are in the page cache (cachestat(2),
 * Linux 6.5; -1 with errno ENOSYS before). Tells cold data (read with O_DIRECT) from cached data. */
int64_t ckvm_cached_pages(int fd, int64_t offset, int64_t length);
