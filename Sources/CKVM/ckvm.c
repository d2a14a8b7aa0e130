#define _GNU_SOURCE
#include "ckvm.h"
#include <sys/mman.h>

int ckvm_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
