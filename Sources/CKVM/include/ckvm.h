#pragma once
/* The only C in the VMM: what Swift cannot call or import directly (variadic ioctl, _IO* macros,
 * signal-number functions, memfd_create). Everything here is a one-line forwarder or a constant. */
#include <stdint.h>
#include <sys/types.h>

/* memfd_create(2): not exported by Swift's Glibc module. */
int ckvm_memfd_create(const char *name, unsigned int flags);
static const unsigned int CKVM_MFD_CLOEXEC = 0x0001U;
static const unsigned int CKVM_MFD_HUGETLB = 0x0004U;
