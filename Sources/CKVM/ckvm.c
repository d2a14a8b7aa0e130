#define _GNU_SOURCE
#include "ckvm.h"
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

int ckvm_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }

int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int ckvm_ioctl_int(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }

int ckvm_sigrtmin(void) { return SIGRTMIN; }

void ckvm_set_immediate_exit(struct kvm_run *run, uint8_t value) {
    __atomic_store_n(&run->immediate_exit, value, __ATOMIC_SEQ_CST);
}
uint8_t *ckvm_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

int ckvm_open_pty(char *name, size_t len) {
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, name, len) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

#include <sys/epoll.h>
#include <sys/syscall.h>
int ckvm_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int ckvm_epoll_ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event e = {.events = events, .data.fd = fd};
    return epoll_ctl(epfd, op, fd, &e);
}
int ckvm_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) { fds[i] = evs[i].data.fd; events[i] = evs[i].events; }
    return n;
}

const int CKVM_O_DIRECT = O_DIRECT;
int ckvm_fallocate(int fd, int mode, int64_t offset, int64_t length) { return fallocate(fd, mode, offset, length); }

#include <sys/socket.h>
int ckvm_accept_nonblock(int listen_fd) { return accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int64_t ckvm_cached_pages(int fd, int64_t offset, int64_t length) {
    /* struct cachestat_range and struct cachestat of <linux/mman.h> (6.5), which older headers lack. */
    struct { uint64_t off, len; } range = {(uint64_t)offset, (uint64_t)length};
    struct { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; } stat;
    if (syscall(451 /* __NR_cachestat, x86-64 */, fd, &range, &stat, 0) != 0) return -1;
    return (int64_t)stat.nr_cache;
}
