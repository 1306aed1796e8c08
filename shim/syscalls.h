// Syscall numbers and structs that Debian 12's glibc headers may lack. x86-64 and arm64 share the
// numbers of every syscall added since 5.x (the unified table), so one fallback serves both.
#pragma once
#include <stdint.h>
#include <sys/syscall.h>

#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464 // Linux 6.13+; older kernels answer ENOSYS and we use /proc/self/fd
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_renameat2
#if defined(__x86_64__)
#define SYS_renameat2 316
#elif defined(__aarch64__)
#define SYS_renameat2 276
#else
#error "renameat2 syscall number unknown for this architecture"
#endif
#endif

#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#endif

struct shim_open_how { uint64_t flags, mode, resolve; };
struct shim_xattr_args { uint64_t value; uint32_t size; uint32_t flags; };
