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
