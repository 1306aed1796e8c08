// overlay2 native shim: the few Linux syscalls Node.js does not expose, plus a batched directory
// scanner that writes packed records (layout: assembly/records.ts) into caller-provided memory.
// Every export is one syscall or one loop of them; there is no overlay policy in here.
// Errors are thrown as Node-style Errors: message "ENOENT: no such file or directory, mount '/x'",
// properties code, errno (negative), syscall, path, dest.
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/quota.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------------
// Syscall numbers and structs that Debian 12's glibc headers may lack. x86-64 and arm64 share the
// numbers of every syscall added since 5.x (the unified table), so one fallback serves both.
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
#ifndef SYS_renameat2
#if defined(__x86_64__)
#define SYS_renameat2 316
#elif defined(__aarch64__)
#define SYS_renameat2 276
#else
#error "renameat2 syscall number unknown for this architecture"
#endif
#endif

struct shim_open_how { uint64_t flags, mode, resolve; };
struct shim_xattr_args { uint64_t value; uint32_t size; uint32_t flags; };

#ifndef UTIME_NOW
#define UTIME_NOW ((1l << 30) - 1l)
#endif
#ifndef UTIME_OMIT
#define UTIME_OMIT ((1l << 30) - 2l)
#endif

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "records are little-endian; this shim writes host order");

// ---------------------------------------------------------------------------------------------
// The record contract (assembly/records.ts). The compiler checks every offset against it.
struct scan_record {
  uint64_t ino;
  int64_t size;
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  uint32_t mode;
  uint32_t uid;
  uint32_t gid;
  uint32_t nlink;     // FLAG_FAILED: the positive errno
  uint32_t dev;       // major << 20 | minor
  uint32_t rdev;
  uint32_t name_off;
  uint16_t name_len;
  uint16_t extra_len; // extra bytes follow the name in the heap
  uint16_t depth;
  uint16_t flags;
};
#define RECORD_SIZE 64
_Static_assert(sizeof(struct scan_record) == RECORD_SIZE, "record size");
_Static_assert(offsetof(struct scan_record, ino) == 0, "ino");
_Static_assert(offsetof(struct scan_record, size) == 8, "size");
_Static_assert(offsetof(struct scan_record, mtime_sec) == 16, "mtimeSec");
_Static_assert(offsetof(struct scan_record, mtime_nsec) == 24, "mtimeNsec");
_Static_assert(offsetof(struct scan_record, mode) == 28, "mode");
_Static_assert(offsetof(struct scan_record, uid) == 32, "uid");
_Static_assert(offsetof(struct scan_record, gid) == 36, "gid");
_Static_assert(offsetof(struct scan_record, nlink) == 40, "nlink");
_Static_assert(offsetof(struct scan_record, dev) == 44, "dev");
_Static_assert(offsetof(struct scan_record, rdev) == 48, "rdev");
_Static_assert(offsetof(struct scan_record, name_off) == 52, "nameOff");
_Static_assert(offsetof(struct scan_record, name_len) == 56, "nameLen");
_Static_assert(offsetof(struct scan_record, extra_len) == 58, "extraLen");
_Static_assert(offsetof(struct scan_record, depth) == 60, "depth");
_Static_assert(offsetof(struct scan_record, flags) == 62, "flags");

#define FLAG_OPAQUE 1
#define FLAG_REDIRECT 2
#define FLAG_METACOPY 4
#define FLAG_CAPS 8
#define FLAG_FAILED 0x8000

#define SCAN_SORTED 1
#define SCAN_OPAQUE 2
#define SCAN_USER_XATTR 4
#define SCAN_CAPS 8
#define SCAN_REDIRECT 16
#define SCAN_METACOPY 32
#define SCAN_NO_RECURSE 64

#define DENTS_CHUNK (32 * 1024) // getdents64 buffer step

// ---------------------------------------------------------------------------------------------
// Errors shaped like Node's fs errors.
struct errno_entry { int err; const char *code; const char *desc; };
static const struct errno_entry errno_table[] = {
  {EPERM, "EPERM", "operation not permitted"},
  {ENOENT, "ENOENT", "no such file or directory"},
  {ESRCH, "ESRCH", "no such process"},
  {EINTR, "EINTR", "interrupted system call"},
  {EIO, "EIO", "i/o error"},
  {ENXIO, "ENXIO", "no such device or address"},
  {E2BIG, "E2BIG", "argument list too long"},
  {EBADF, "EBADF", "bad file descriptor"},
  {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
  {ENOMEM, "ENOMEM", "not enough memory"},
  {EACCES, "EACCES", "permission denied"},
  {EFAULT, "EFAULT", "bad address in system call argument"},
  {ENOTBLK, "ENOTBLK", "block device required"},
  {EBUSY, "EBUSY", "resource busy or locked"},
  {EEXIST, "EEXIST", "file already exists"},
  {EXDEV, "EXDEV", "cross-device link not permitted"},
  {ENODEV, "ENODEV", "no such device"},
  {ENOTDIR, "ENOTDIR", "not a directory"},
  {EISDIR, "EISDIR", "illegal operation on a directory"},
  {EINVAL, "EINVAL", "invalid argument"},
  {ENFILE, "ENFILE", "file table overflow"},
  {EMFILE, "EMFILE", "too many open files"},
  {ETXTBSY, "ETXTBSY", "text file is busy"},
  {EFBIG, "EFBIG", "file too large"},
  {ENOSPC, "ENOSPC", "no space left on device"},
  {ESPIPE, "ESPIPE", "invalid seek"},
  {EROFS, "EROFS", "read-only file system"},
  {EMLINK, "EMLINK", "too many links"},
  {ERANGE, "ERANGE", "result too large"},
  {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
  {ENOSYS, "ENOSYS", "function not implemented"},
  {ENOTEMPTY, "ENOTEMPTY", "directory not empty"},
  {ELOOP, "ELOOP", "too many symbolic links encountered"},
  {ENODATA, "ENODATA", "no data available"},
  {EOVERFLOW, "EOVERFLOW", "value too large for defined data type"},
  {ENOBUFS, "ENOBUFS", "no buffer space available"},
  {EOPNOTSUPP, "EOPNOTSUPP", "operation not supported"},
  {ESTALE, "ESTALE", "stale file handle"},
  {EDQUOT, "EDQUOT", "disk quota exceeded"},
  {ECANCELED, "ECANCELED", "operation canceled"},
};

static const struct errno_entry *errno_lookup(int err) {
  for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++)
    if (errno_table[i].err == err) return &errno_table[i];
  return NULL;
}

static void set_str_prop(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

static napi_value errno_error(napi_env env, int err, const char *syscall_name, const char *path, const char *dest) {
  const struct errno_entry *e = errno_lookup(err);
  char codebuf[24];
  const char *code = e ? e->code : (snprintf(codebuf, sizeof codebuf, "E%d", err), codebuf);
  const char *desc = e ? e->desc : strerror(err);
  size_t len = strlen(code) + strlen(desc) + strlen(syscall_name) + (path ? strlen(path) : 0) +
               (dest ? strlen(dest) : 0) + 32;
  char *msg = malloc(len);
  napi_value msgv, codev, errv, num;
  if (!msg) {
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &msgv);
  } else {
    int n = snprintf(msg, len, "%s: %s, %s", code, desc, syscall_name);
    if (path) n += snprintf(msg + n, len - n, " '%s'", path);
    if (dest) snprintf(msg + n, len - n, " -> '%s'", dest);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msgv);
    free(msg);
  }
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codev);
  napi_create_error(env, codev, msgv, &errv);
  napi_create_int32(env, -err, &num);
  napi_set_named_property(env, errv, "errno", num);
  set_str_prop(env, errv, "syscall", syscall_name);
  if (path) set_str_prop(env, errv, "path", path);
  if (dest) set_str_prop(env, errv, "dest", dest);
  return errv;
}

static void throw_errno(napi_env env, int err, const char *syscall_name, const char *path, const char *dest) {
  napi_throw(env, errno_error(env, err, syscall_name, path, dest));
}

static void throw_type(napi_env env, const char *what, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", what, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

// ---------------------------------------------------------------------------------------------
// Argument helpers. Each returns false after throwing a TypeError.
#define MAX_ARGS 8
#define GET_ARGS(n)                                                        \
  size_t argc = (n);                                                       \
  napi_value argv[MAX_ARGS];                                               \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL; \
  for (size_t i_ = argc; i_ < (n); i_++) napi_get_undefined(env, &argv[i_]);

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

// A malloc'd UTF-8 copy of a string argument (free it). With nullable, null/undefined give *out = NULL.
// Embedded NULs are refused: the kernel would silently see a shorter path.
static bool arg_string(napi_env env, napi_value v, const char *what, bool nullable, char **out) {
  *out = NULL;
  if (nullable && is_nullish(env, v)) return true;
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    throw_type(env, what, nullable ? "of type string or null" : "of type string");
    return false;
  }
  char *s = malloc(len + 1);
  if (!s) { throw_errno(env, ENOMEM, "malloc", NULL, NULL); return false; }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    char msg[160];
    snprintf(msg, sizeof msg, "The \"%s\" argument must be a string without null bytes", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  *out = s;
  return true;
}

static bool arg_i64(napi_env env, napi_value v, const char *what, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) { throw_type(env, what, "of type number"); return false; }
  return true;
}

static bool arg_i32(napi_env env, napi_value v, const char *what, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) { throw_type(env, what, "of type number"); return false; }
  return true;
}

// Bytes of a Uint8Array/Buffer (views over SharedArrayBuffers included).
static bool arg_u8(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    throw_type(env, what, "a Uint8Array or Buffer");
    return false;
  }
  *data = p;
  if (*len > 0 && !p) { throw_type(env, what, "a Uint8Array with usable memory"); return false; }
  return true;
}

// A value that may be a string (UTF-8) or bytes. *owned is set when *data was malloc'd.
static bool arg_bytes_or_string(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len, char **owned) {
  napi_valuetype t;
  *owned = NULL;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_string) {
    size_t n;
    napi_get_value_string_utf8(env, v, NULL, 0, &n);
    char *s = malloc(n + 1);
    if (!s) { throw_errno(env, ENOMEM, "malloc", NULL, NULL); return false; }
    napi_get_value_string_utf8(env, v, s, n + 1, &n);
    *owned = s;
    *data = (uint8_t *)s;
    *len = n;
    return true;
  }
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) == napi_ok && is_ta &&
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) == napi_ok && type == napi_uint8_array) {
    *data = p;
    return true;
  }
  throw_type(env, what, "of type string or a Buffer");
  return false;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Mounting

// mount(source, target, fstype, flags, data)
static napi_value js_mount(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  int64_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "source", true, &source) || !arg_string(env, argv[1], "target", false, &target) ||
      !arg_string(env, argv[2], "fstype", true, &fstype) || !arg_i64(env, argv[3], "flags", &flags) ||
      !arg_string(env, argv[4], "data", true, &data))
    goto out;
  if (mount(source, target, fstype, (unsigned long)flags, data) != 0) throw_errno(env, errno, "mount", target, NULL);
  else ret = undefined(env);
out:
  free(source); free(target); free(fstype); free(data);
  return ret;
}

struct mount_at_job {
  const char *dir, *source, *target, *fstype, *data;
  unsigned long flags;
  int err;
  const char *failed;
};

// Runs on its own thread: CLONE_FS unshared, its cwd can move without touching the process's.
static void *mount_at_thread(void *arg) {
  struct mount_at_job *j = arg;
  if (unshare(CLONE_FS) != 0) { j->err = errno; j->failed = "unshare"; return NULL; }
  if (chdir(j->dir) != 0) { j->err = errno; j->failed = "chdir"; return NULL; }
  if (mount(j->source, j->target, j->fstype, j->flags, j->data) != 0) { j->err = errno; j->failed = "mount"; }
  return NULL;
}

// mountAt(dir, source, target, fstype, flags, data)
static napi_value js_mount_at(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  char *dir = NULL, *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  int64_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "dir", false, &dir) || !arg_string(env, argv[1], "source", true, &source) ||
      !arg_string(env, argv[2], "target", false, &target) || !arg_string(env, argv[3], "fstype", true, &fstype) ||
      !arg_i64(env, argv[4], "flags", &flags) || !arg_string(env, argv[5], "data", true, &data))
    goto out;
  struct mount_at_job job = {dir, source, target, fstype, data, (unsigned long)flags, 0, NULL};
  pthread_t th;
  int rc = pthread_create(&th, NULL, mount_at_thread, &job);
  if (rc != 0) { throw_errno(env, rc, "pthread_create", NULL, NULL); goto out; }
  pthread_join(th, NULL);
  if (job.err) {
    const char *p = strcmp(job.failed, "chdir") == 0 ? dir : strcmp(job.failed, "mount") == 0 ? target : NULL;
    throw_errno(env, job.err, job.failed, p, NULL);
  } else {
    ret = undefined(env);
  }
out:
  free(dir); free(source); free(target); free(fstype); free(data);
  return ret;
}

// umount2(target, flags)
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *target = NULL;
  int32_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "target", false, &target) || !arg_i32(env, argv[1], "flags", &flags)) goto out;
  if (umount2(target, flags) != 0) throw_errno(env, errno, "umount2", target, NULL);
  else ret = undefined(env);
out:
  free(target);
  return ret;
}

// fsopen(fsname, flags) -> fd
static napi_value js_fsopen(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *name = NULL;
  int64_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "fsname", false, &name) || !arg_i64(env, argv[1], "flags", &flags)) goto out;
  long fd = syscall(SYS_fsopen, name, (unsigned int)flags);
  if (fd < 0) throw_errno(env, errno, "fsopen", name, NULL);
  else ret = number(env, (double)fd);
out:
  free(name);
  return ret;
}

// fsconfig(fd, cmd, key, value, aux). A Buffer value is passed as binary with aux = its length.
static napi_value js_fsconfig(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t fd, cmd, aux;
  char *key = NULL, *owned = NULL;
  uint8_t *value = NULL;
  size_t vlen = 0;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "fd", &fd) || !arg_i32(env, argv[1], "cmd", &cmd) ||
      !arg_string(env, argv[2], "key", true, &key) || !arg_i32(env, argv[4], "aux", &aux))
    goto out;
  if (!is_nullish(env, argv[3])) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t == napi_string) {
      if (!arg_string(env, argv[3], "value", false, &owned)) goto out;
      value = (uint8_t *)owned;
    } else {
      if (!arg_u8(env, argv[3], "value", &value, &vlen)) goto out;
      aux = (int32_t)vlen;
    }
  }
  if (syscall(SYS_fsconfig, fd, (unsigned int)cmd, key, value, aux) != 0)
    throw_errno(env, errno, "fsconfig", owned ? owned : key, NULL);
  else
    ret = undefined(env);
out:
  free(key); free(owned);
  return ret;
}

// fsmount(fd, flags, attrFlags) -> mount fd
static napi_value js_fsmount(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t fd;
  int64_t flags, attr;
  if (!arg_i32(env, argv[0], "fd", &fd) || !arg_i64(env, argv[1], "flags", &flags) ||
      !arg_i64(env, argv[2], "attrFlags", &attr))
    return NULL;
  long mfd = syscall(SYS_fsmount, fd, (unsigned int)flags, (unsigned int)attr);
  if (mfd < 0) { throw_errno(env, errno, "fsmount", NULL, NULL); return NULL; }
  return number(env, (double)mfd);
}

// moveMount(fromDirfd, fromPath, toDirfd, toPath, flags)
static napi_value js_move_mount(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t from_fd, to_fd;
  int64_t flags;
  char *from = NULL, *to = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "fromDirfd", &from_fd) || !arg_string(env, argv[1], "fromPath", false, &from) ||
      !arg_i32(env, argv[2], "toDirfd", &to_fd) || !arg_string(env, argv[3], "toPath", false, &to) ||
      !arg_i64(env, argv[4], "flags", &flags))
    goto out;
  if (syscall(SYS_move_mount, from_fd, from, to_fd, to, (unsigned int)flags) != 0)
    throw_errno(env, errno, "move_mount", from, to);
  else
    ret = undefined(env);
out:
  free(from); free(to);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// Extended attributes

// Reads a whole attribute value with get(size 0) to size it, then get; retries if it grew meanwhile.
// Returns the length (malloc'd *out, at least 1 byte allocated), -1 on error (errno set).
typedef ssize_t (*xattr_getter)(const void *target, const char *name, void *buf, size_t size);
static ssize_t get_path_x(const void *t, const char *n, void *b, size_t s) { return lgetxattr(t, n, b, s); }
static ssize_t get_fd_x(const void *t, const char *n, void *b, size_t s) { return fgetxattr(*(const int *)t, n, b, s); }
static ssize_t list_path_x(const void *t, const char *n, void *b, size_t s) { (void)n; return llistxattr(t, b, s); }

static ssize_t read_whole(xattr_getter get, const void *target, const char *name, uint8_t **out) {
  *out = NULL;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = get(target, name, NULL, 0);
    if (size < 0) return -1;
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) { errno = ENOMEM; return -1; }
    ssize_t n = get(target, name, buf, (size_t)size);
    if (n >= 0) { *out = buf; return n; }
    free(buf);
    if (errno != ERANGE) return -1;
  }
  errno = ERANGE;
  return -1;
}

static napi_value xattr_value_result(napi_env env, ssize_t n, uint8_t *buf, const char *path) {
  napi_value ret = NULL;
  if (n < 0) {
    if (errno == ENODATA) napi_get_null(env, &ret);
    else throw_errno(env, errno, path ? "lgetxattr" : "fgetxattr", path, NULL);
    return ret;
  }
  napi_create_buffer_copy(env, (size_t)n, buf, NULL, &ret);
  free(buf);
  return ret;
}

// lgetxattr(path, name) -> Buffer | null
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *path = NULL, *name = NULL;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "path", false, &path) || !arg_string(env, argv[1], "name", false, &name)) goto out;
  uint8_t *buf;
  ssize_t n = read_whole(get_path_x, path, name, &buf);
  ret = xattr_value_result(env, n, buf, path);
out:
  free(path); free(name);
  return ret;
}

// fgetxattr(fd, name) -> Buffer | null
static napi_value js_fgetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t fd;
  char *name = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "fd", &fd) || !arg_string(env, argv[1], "name", false, &name)) goto out;
  uint8_t *buf;
  ssize_t n = read_whole(get_fd_x, &fd, name, &buf);
  ret = xattr_value_result(env, n, buf, NULL);
out:
  free(name);
  return ret;
}

// lsetxattr(path, name, value, flags)
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  char *path = NULL, *name = NULL, *owned = NULL;
  uint8_t *value;
  size_t len;
  int32_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "path", false, &path) || !arg_string(env, argv[1], "name", false, &name) ||
      !arg_bytes_or_string(env, argv[2], "value", &value, &len, &owned) || !arg_i32(env, argv[3], "flags", &flags))
    goto out;
  if (lsetxattr(path, name, value, len, flags) != 0) throw_errno(env, errno, "lsetxattr", path, NULL);
  else ret = undefined(env);
out:
  free(path); free(name); free(owned);
  return ret;
}

// fsetxattr(fd, name, value, flags)
static napi_value js_fsetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int32_t fd, flags;
  char *name = NULL, *owned = NULL;
  uint8_t *value;
  size_t len;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "fd", &fd) || !arg_string(env, argv[1], "name", false, &name) ||
      !arg_bytes_or_string(env, argv[2], "value", &value, &len, &owned) || !arg_i32(env, argv[3], "flags", &flags))
    goto out;
  if (fsetxattr(fd, name, value, len, flags) != 0) throw_errno(env, errno, "fsetxattr", NULL, NULL);
  else ret = undefined(env);
out:
  free(name); free(owned);
  return ret;
}

// llistxattr(path) -> string[]
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "path", false, &path)) goto out;
  uint8_t *buf;
  ssize_t n = read_whole(list_path_x, path, NULL, &buf);
  if (n < 0) { throw_errno(env, errno, "llistxattr", path, NULL); goto out; }
  napi_create_array(env, &ret);
  uint32_t idx = 0;
  for (ssize_t i = 0; i < n;) {
    size_t l = strnlen((char *)buf + i, (size_t)(n - i));
    if (l > 0) {
      napi_value s;
      napi_create_string_utf8(env, (char *)buf + i, l, &s);
      napi_set_element(env, ret, idx++, s);
    }
    i += (ssize_t)l + 1;
  }
  free(buf);
out:
  free(path);
  return ret;
}

// lremovexattr(path, name)
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *path = NULL, *name = NULL;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "path", false, &path) || !arg_string(env, argv[1], "name", false, &name)) goto out;
  if (lremovexattr(path, name) != 0) throw_errno(env, errno, "lremovexattr", path, NULL);
  else ret = undefined(env);
out:
  free(path); free(name);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// Filesystem facts

static void set_num_prop(napi_env env, napi_value obj, const char *key, double d) {
  napi_set_named_property(env, obj, key, number(env, d));
}

// statfs(path) -> {type, bsize, blocks, bfree, bavail, files, ffree, namelen, frsize, flags}
static napi_value js_statfs(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "path", false, &path)) goto out;
  struct statfs s;
  if (statfs(path, &s) != 0) { throw_errno(env, errno, "statfs", path, NULL); goto out; }
  napi_create_object(env, &ret);
  set_num_prop(env, ret, "type", (double)((unsigned long)s.f_type & 0xffffffffUL)); // magics are 32-bit
  set_num_prop(env, ret, "bsize", (double)s.f_bsize);
  set_num_prop(env, ret, "blocks", (double)s.f_blocks);
  set_num_prop(env, ret, "bfree", (double)s.f_bfree);
  set_num_prop(env, ret, "bavail", (double)s.f_bavail);
  set_num_prop(env, ret, "files", (double)s.f_files);
  set_num_prop(env, ret, "ffree", (double)s.f_ffree);
  set_num_prop(env, ret, "namelen", (double)s.f_namelen);
  set_num_prop(env, ret, "frsize", (double)s.f_frsize);
  set_num_prop(env, ret, "flags", (double)s.f_flags);
out:
  free(path);
  return ret;
}

// syncfs(fd)
static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_i32(env, argv[0], "fd", &fd)) return NULL;
  if (syncfs(fd) != 0) { throw_errno(env, errno, "syncfs", NULL, NULL); return NULL; }
  return undefined(env);
}

struct dirent64_raw { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[]; };

static bool dot_or_dotdot(const char *n) { return n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0)); }

static long getdents(int fd, void *buf, size_t size) { return syscall(SYS_getdents64, fd, buf, size); }

// direntTypes(path) -> d_type of each entry ("." and ".." excluded), so callers can tell whether the
// filesystem fills d_type (0 = DT_UNKNOWN).
static napi_value js_dirent_types(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char *path = NULL;
  uint8_t *buf = NULL;
  napi_value ret = NULL, arr;
  if (!arg_string(env, argv[0], "path", false, &path)) goto out;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, "open", path, NULL); goto out; }
  if (!(buf = malloc(DENTS_CHUNK))) { close(fd); throw_errno(env, ENOMEM, "getdents64", path, NULL); goto out; }
  napi_create_array(env, &arr);
  uint32_t idx = 0;
  for (;;) {
    long n = getdents(fd, buf, DENTS_CHUNK);
    if (n < 0) { int err = errno; close(fd); throw_errno(env, err, "getdents64", path, NULL); goto out; }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
      if (!dot_or_dotdot(d->d_name)) napi_set_element(env, arr, idx++, number(env, d->d_type));
      off += d->d_reclen;
    }
  }
  close(fd);
  ret = arr;
out:
  free(path);
  free(buf);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// project quotas (XFS): the project id of a directory, and a project's block limit

// fsxattrGet(fd) -> {xflags, projid, extsize, nextents, cowextsize}   (ioctl FS_IOC_FSGETXATTR)
static napi_value js_fsxattr_get(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_i32(env, argv[0], "fd", &fd)) return NULL;
  struct fsxattr fsx;
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0) { throw_errno(env, errno, "ioctl", NULL, NULL); return NULL; }
  napi_value ret;
  napi_create_object(env, &ret);
  set_num_prop(env, ret, "xflags", fsx.fsx_xflags);
  set_num_prop(env, ret, "projid", fsx.fsx_projid);
  set_num_prop(env, ret, "extsize", fsx.fsx_extsize);
  set_num_prop(env, ret, "nextents", fsx.fsx_nextents);
  set_num_prop(env, ret, "cowextsize", fsx.fsx_cowextsize);
  return ret;
}

// fsxattrSet(fd, xflags, projid): FS_IOC_FSGETXATTR then FS_IOC_FSSETXATTR with those two fields
// replaced, so the fields the caller did not name keep their values.
static napi_value js_fsxattr_set(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t fd;
  int64_t xflags, projid;
  if (!arg_i32(env, argv[0], "fd", &fd) || !arg_i64(env, argv[1], "xflags", &xflags) ||
      !arg_i64(env, argv[2], "projid", &projid))
    return NULL;
  struct fsxattr fsx;
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0) { throw_errno(env, errno, "ioctl", NULL, NULL); return NULL; }
  fsx.fsx_xflags = (uint32_t)xflags;
  fsx.fsx_projid = (uint32_t)projid;
  if (ioctl(fd, FS_IOC_FSSETXATTR, &fsx) != 0) { throw_errno(env, errno, "ioctl", NULL, NULL); return NULL; }
  return undefined(env);
}

// xfsQuotaSetLimit(device, projid, bytes): quotactl(Q_XSETQLIM, PRJQUOTA) with hard = soft = bytes
// (0 removes the limit).
static napi_value js_xfs_quota_set_limit(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  char *dev = NULL;
  int64_t projid, bytes;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "device", false, &dev) || !arg_i64(env, argv[1], "projid", &projid) ||
      !arg_i64(env, argv[2], "bytes", &bytes))
    goto out;
  struct fs_disk_quota d;
  memset(&d, 0, sizeof d);
  d.d_version = FS_DQUOT_VERSION;
  d.d_id = (uint32_t)projid;
  d.d_flags = FS_PROJ_QUOTA;
  d.d_fieldmask = FS_DQ_BHARD | FS_DQ_BSOFT;
  d.d_blk_hardlimit = (uint64_t)bytes / 512;
  d.d_blk_softlimit = d.d_blk_hardlimit;
  if (quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), dev, (int)projid, (caddr_t)&d) != 0) {
    throw_errno(env, errno, "quotactl", dev, NULL);
    goto out;
  }
  ret = undefined(env);
out:
  free(dev);
  return ret;
}

// xfsQuotaGet(device, projid) -> {limitBytes, usedBytes}   (quotactl Q_XGETQUOTA, PRJQUOTA)
static napi_value js_xfs_quota_get(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *dev = NULL;
  int64_t projid;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "device", false, &dev) || !arg_i64(env, argv[1], "projid", &projid)) goto out;
  struct fs_disk_quota d;
  memset(&d, 0, sizeof d);
  if (quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), dev, (int)projid, (caddr_t)&d) != 0) {
    throw_errno(env, errno, "quotactl", dev, NULL);
    goto out;
  }
  napi_create_object(env, &ret);
  set_num_prop(env, ret, "limitBytes", (double)d.d_blk_hardlimit * 512);
  set_num_prop(env, ret, "usedBytes", (double)d.d_bcount * 512);
out:
  free(dev);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// *at operations

// openat2(dirfd, path, flags, mode, resolve) -> fd
static napi_value js_openat2(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t dirfd;
  int64_t flags, mode, resolve;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "flags", &flags) || !arg_i64(env, argv[3], "mode", &mode) ||
      !arg_i64(env, argv[4], "resolve", &resolve))
    goto out;
  struct shim_open_how how = {(uint64_t)(uint32_t)flags, (uint64_t)mode, (uint64_t)resolve};
  long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd < 0) throw_errno(env, errno, "openat2", path, NULL);
  else ret = number(env, (double)fd);
out:
  free(path);
  return ret;
}

// mkdirat(dirfd, path, mode)
static napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  int64_t mode;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "mode", &mode))
    goto out;
  if (mkdirat(dirfd, path, (mode_t)mode) != 0) throw_errno(env, errno, "mkdirat", path, NULL);
  else ret = undefined(env);
out:
  free(path);
  return ret;
}

// mknodat(dirfd, path, mode, major, minor)
static napi_value js_mknodat(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t dirfd;
  int64_t mode, maj, min;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "mode", &mode) || !arg_i64(env, argv[3], "major", &maj) ||
      !arg_i64(env, argv[4], "minor", &min))
    goto out;
  if (mknodat(dirfd, path, (mode_t)mode, makedev((unsigned int)maj, (unsigned int)min)) != 0)
    throw_errno(env, errno, "mknodat", path, NULL);
  else
    ret = undefined(env);
out:
  free(path);
  return ret;
}

// symlinkat(target, dirfd, path)
static napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  char *target = NULL, *path = NULL;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], "target", false, &target) || !arg_i32(env, argv[1], "dirfd", &dirfd) ||
      !arg_string(env, argv[2], "path", false, &path))
    goto out;
  if (symlinkat(target, dirfd, path) != 0) throw_errno(env, errno, "symlinkat", target, path);
  else ret = undefined(env);
out:
  free(target); free(path);
  return ret;
}

// linkat(oldDirfd, oldPath, newDirfd, newPath, flags)
static napi_value js_linkat(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t ofd, nfd, flags;
  char *oldp = NULL, *newp = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "oldDirfd", &ofd) || !arg_string(env, argv[1], "oldPath", false, &oldp) ||
      !arg_i32(env, argv[2], "newDirfd", &nfd) || !arg_string(env, argv[3], "newPath", false, &newp) ||
      !arg_i32(env, argv[4], "flags", &flags))
    goto out;
  if (linkat(ofd, oldp, nfd, newp, flags) != 0) throw_errno(env, errno, "linkat", oldp, newp);
  else ret = undefined(env);
out:
  free(oldp); free(newp);
  return ret;
}

// unlinkat(dirfd, path, flags)
static napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd, flags;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i32(env, argv[2], "flags", &flags))
    goto out;
  if (unlinkat(dirfd, path, flags) != 0) throw_errno(env, errno, "unlinkat", path, NULL);
  else ret = undefined(env);
out:
  free(path);
  return ret;
}

// renameat2(oldDirfd, oldPath, newDirfd, newPath, flags)
static napi_value js_renameat2(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t ofd, nfd;
  int64_t flags;
  char *oldp = NULL, *newp = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "oldDirfd", &ofd) || !arg_string(env, argv[1], "oldPath", false, &oldp) ||
      !arg_i32(env, argv[2], "newDirfd", &nfd) || !arg_string(env, argv[3], "newPath", false, &newp) ||
      !arg_i64(env, argv[4], "flags", &flags))
    goto out;
  if (syscall(SYS_renameat2, ofd, oldp, nfd, newp, (unsigned int)flags) != 0)
    throw_errno(env, errno, "renameat2", oldp, newp);
  else
    ret = undefined(env);
out:
  free(oldp); free(newp);
  return ret;
}

// fchownat(dirfd, path, uid, gid, flags); -1 leaves an id unchanged
static napi_value js_fchownat(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t dirfd, flags;
  int64_t uid, gid;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "uid", &uid) || !arg_i64(env, argv[3], "gid", &gid) ||
      !arg_i32(env, argv[4], "flags", &flags))
    goto out;
  if (fchownat(dirfd, path, (uid_t)uid, (gid_t)gid, flags) != 0) throw_errno(env, errno, "fchownat", path, NULL);
  else ret = undefined(env);
out:
  free(path);
  return ret;
}

// fchmodat(dirfd, path, mode)
static napi_value js_fchmodat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  int64_t mode;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "mode", &mode))
    goto out;
  if (fchmodat(dirfd, path, (mode_t)mode, 0) != 0) throw_errno(env, errno, "fchmodat", path, NULL);
  else ret = undefined(env);
out:
  free(path);
  return ret;
}

// utimensat(dirfd, path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags)
static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  int32_t dirfd, flags;
  int64_t as, an, ms, mn;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "atimeSec", &as) || !arg_i64(env, argv[3], "atimeNsec", &an) ||
      !arg_i64(env, argv[4], "mtimeSec", &ms) || !arg_i64(env, argv[5], "mtimeNsec", &mn) ||
      !arg_i32(env, argv[6], "flags", &flags))
    goto out;
  struct timespec ts[2] = {{(time_t)as, (long)an}, {(time_t)ms, (long)mn}};
  if (utimensat(dirfd, path, ts, flags) != 0) throw_errno(env, errno, "utimensat", path, NULL);
  else ret = undefined(env);
out:
  free(path);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// Records and the xattrs the scan flags ask for

// A failure inside a scan/lookup, turned into a JS error on the main thread.
struct failure { int err; const char *syscall; char *path; };

static void failure_clear(struct failure *f) { free(f->path); memset(f, 0, sizeof *f); }

static uint32_t dev32(dev_t d) { return (uint32_t)(major(d) << 20 | (minor(d) & 0xfffff)); }

static void fill_record(struct scan_record *r, const struct stat *st) {
  memset(r, 0, sizeof *r);
  r->ino = st->st_ino;
  r->size = st->st_size;
  r->mtime_sec = st->st_mtim.tv_sec;
  r->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
  r->mode = st->st_mode;
  r->uid = st->st_uid;
  r->gid = st->st_gid;
  r->nlink = (uint32_t)st->st_nlink;
  r->dev = dev32(st->st_dev);
  r->rdev = (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) ? dev32(st->st_rdev) : 0;
}

struct xbuf { uint8_t *p; size_t cap, len; };

static int xbuf_reserve(struct xbuf *b, size_t n) {
  if (n <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < n) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) { errno = ENOMEM; return -1; }
  b->p = p;
  b->cap = cap;
  return 0;
}

#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif

static int have_xattrat = 1; // cleared once the kernel answers ENOSYS (getxattrat/listxattrat: Linux 6.13+)

// One getxattr (xname) or listxattr (xname NULL) of entry `name` in `dirfd` without following a
// final symlink, or of `fd` when fd >= 0. The *xattrat syscalls are ~2.5x cheaper than the
// /proc/self/fd/N/name path walk older kernels need.
static ssize_t entry_xattr_raw(int dirfd, const char *name, int fd, const char *xname, void *buf, size_t size) {
  if (fd >= 0) return xname ? fgetxattr(fd, xname, buf, size) : flistxattr(fd, buf, size);
  if (__atomic_load_n(&have_xattrat, __ATOMIC_RELAXED)) {
    long r;
    if (xname) {
      struct shim_xattr_args a = {(uint64_t)(uintptr_t)buf, (uint32_t)size, 0};
      r = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, xname, &a, sizeof a);
    } else {
      r = syscall(SYS_listxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, buf, size);
    }
    if (r >= 0 || errno != ENOSYS) return r;
    __atomic_store_n(&have_xattrat, 0, __ATOMIC_RELAXED);
  }
  char p[64 + NAME_MAX + 1];
  snprintf(p, sizeof p, "/proc/self/fd/%d/%s", dirfd, name);
  return xname ? lgetxattr(p, xname, buf, size) : llistxattr(p, buf, size);
}

// Reads attribute xname (NULL: the name list) into b. Returns 1 present (b->len set), 0 absent
// (or the filesystem has no xattrs), -1 error (errno set).
static int entry_xattr(int dirfd, const char *name, int fd, const char *xname, struct xbuf *b) {
  if (xbuf_reserve(b, 256) != 0) return -1;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t n = entry_xattr_raw(dirfd, name, fd, xname, b->p, b->cap);
    if (n >= 0) { b->len = (size_t)n; return 1; }
    if (errno == ENODATA || errno == EOPNOTSUPP) return 0;
    if (errno != ERANGE) return -1;
    n = entry_xattr_raw(dirfd, name, fd, xname, NULL, 0);
    if (n < 0) return (errno == ENODATA || errno == EOPNOTSUPP) ? 0 : -1;
    if (xbuf_reserve(b, (size_t)n + 1) != 0) return -1;
  }
  errno = ERANGE;
  return -1;
}

static bool list_has(const struct xbuf *list, const char *xname) {
  size_t want = strlen(xname) + 1;
  for (size_t i = 0; i < list->len;) {
    const char *n = (const char *)list->p + i;
    size_t l = strnlen(n, list->len - i) + 1;
    if (l == want && memcmp(n, xname, want - 1) == 0) return true;
    i += l;
  }
  return false;
}

// The xattr part of a record: sets r->flags, copies one extra into extra. Which attributes an entry
// gets asked for depends on its type and the scan flags:
//   directories   overlay.opaque (flag, value "y"); overlay.redirect (flag; the extra unless caps are asked)
//   regular files overlay.metacopy (flag)
//   every type    security.capability (the extra; moby compares it on every entry, dirs and symlinks too)
// When more than one attribute is asked for, one listxattr first spares the gets of absent ones (most
// entries have none). bufs: two scratch buffers. Returns 0, or -1 with errno set and *which naming
// the syscall.
struct xattr_want { char name[64]; uint16_t bit; bool must_be_y; };

static int entry_xattrs(uint32_t sflags, int dirfd, const char *name, int fd, struct scan_record *r,
                        struct xbuf bufs[2], struct xbuf *extra, const char **which) {
  const char *pfx = (sflags & SCAN_USER_XATTR) ? "user.overlay." : "trusted.overlay.";
  struct xattr_want flags[2];
  int nflags = 0;
  char extra_name[64] = "";
  uint16_t extra_bit = 0;
  extra->len = 0;
  if (S_ISDIR(r->mode)) {
    if (sflags & SCAN_OPAQUE) {
      snprintf(flags[nflags].name, sizeof flags[0].name, "%sopaque", pfx);
      flags[nflags].bit = FLAG_OPAQUE; flags[nflags++].must_be_y = true;
    }
    if ((sflags & SCAN_REDIRECT) && (sflags & SCAN_CAPS)) {
      snprintf(flags[nflags].name, sizeof flags[0].name, "%sredirect", pfx);
      flags[nflags].bit = FLAG_REDIRECT; flags[nflags++].must_be_y = false;
    } else if (sflags & SCAN_REDIRECT) {
      snprintf(extra_name, sizeof extra_name, "%sredirect", pfx);
      extra_bit = FLAG_REDIRECT;
    }
  } else if (S_ISREG(r->mode) && (sflags & SCAN_METACOPY)) {
    snprintf(flags[nflags].name, sizeof flags[0].name, "%smetacopy", pfx);
    flags[nflags].bit = FLAG_METACOPY; flags[nflags++].must_be_y = false;
  }
  if (sflags & SCAN_CAPS) { strcpy(extra_name, "security.capability"); extra_bit = FLAG_CAPS; }
  if (!nflags && !extra_bit) return 0;
  struct xbuf *tmp = &bufs[0], *list = &bufs[1];
  int got;
  if (nflags + (extra_bit ? 1 : 0) > 1) {
    *which = fd >= 0 ? "flistxattr" : "llistxattr";
    if ((got = entry_xattr(dirfd, name, fd, NULL, list)) < 0) return -1;
    if (!got) list->len = 0;
    for (int i = 0; i < nflags; i++) if (!list_has(list, flags[i].name)) flags[i].bit = 0;
    if (extra_bit && !list_has(list, extra_name)) extra_bit = 0;
  }
  *which = fd >= 0 ? "fgetxattr" : "lgetxattr";
  for (int i = 0; i < nflags; i++) {
    if (!flags[i].bit) continue;
    if ((got = entry_xattr(dirfd, name, fd, flags[i].name, tmp)) < 0) return -1;
    // opaque: only "y" counts ("x" marks a dir holding xwhiteouts); the others: present is enough
    if (got && (!flags[i].must_be_y || (tmp->len == 1 && tmp->p[0] == 'y'))) r->flags |= flags[i].bit;
  }
  if (extra_bit) {
    if ((got = entry_xattr(dirfd, name, fd, extra_name, extra)) < 0) return -1;
    if (got) r->flags |= extra_bit;
    else extra->len = 0;
  }
  if (extra->len > UINT16_MAX) { errno = EOVERFLOW; return -1; }
  r->extra_len = (uint16_t)extra->len;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The scanner: a depth-first pre-order walk whose state (one open fd + its entries per depth)
// lives in the handle, so a walk can stop at any batch boundary and resume exactly there.

#define SCAN_MAGIC 0x6f766c32u

struct level {
  int fd;
  char *name;          // this directory's name in its parent (NULL for the root), for error paths
  uint8_t *buf;        // getdents64 bytes
  size_t cap, len, pos;
  bool eof;
  char **sorted;       // SCAN_SORTED: every name of the directory, in byte order
  size_t n, i;
};

struct pending {        // the next entry, fully examined but not yet written
  bool valid;
  struct scan_record rec;
  char name[NAME_MAX + 1];
  size_t name_len;
  struct xbuf extra;
  int child_fd;         // a directory to descend into once this record is written; -1 otherwise
};

struct scan {
  uint32_t magic;
  uint32_t flags;
  char *root_path;
  struct level *levels;
  size_t depth, cap;    // levels[0] is the root; entries of levels[d] have depth d + 1
  struct pending pend;
  struct xbuf tmp[2];
  struct failure broken; // a scan error: every later call reports it again
  bool is_broken, closed, busy, close_when_idle;
  // async batch
  napi_async_work work;
  napi_ref ref_self, ref_records, ref_heap, ref_cb;
  uint8_t *rec_ptr, *heap_ptr;
  size_t rec_len, heap_len;
  uint32_t out_count, out_heap;
  bool out_done;
  int out_rc;
  struct failure out_fail;
};

static void level_free(struct level *l) {
  if (l->fd >= 0) close(l->fd);
  free(l->name);
  free(l->buf);
  free(l->sorted);
  memset(l, 0, sizeof *l);
  l->fd = -1;
}

static void scan_close_all(struct scan *s) {
  for (size_t i = 0; i < s->depth; i++) level_free(&s->levels[i]);
  s->depth = 0;
  if (s->pend.valid && s->pend.child_fd >= 0) close(s->pend.child_fd);
  s->pend.valid = false;
  s->pend.child_fd = -1;
  s->closed = true;
}

static void scan_destroy(struct scan *s) {
  scan_close_all(s);
  free(s->levels);
  free(s->root_path);
  free(s->pend.extra.p);
  free(s->tmp[0].p);
  free(s->tmp[1].p);
  failure_clear(&s->broken);
  failure_clear(&s->out_fail);
  s->magic = 0;
  free(s);
}

static void scan_finalize(napi_env env, void *data, void *hint) { scan_destroy(data); }

// The path of entry `name` (NULL: the current directory) for error messages.
static char *scan_path(struct scan *s, const char *name) {
  size_t len = strlen(s->root_path) + (name ? strlen(name) + 1 : 0) + 1;
  for (size_t i = 1; i < s->depth; i++) len += strlen(s->levels[i].name) + 1;
  char *p = malloc(len);
  if (!p) return NULL;
  strcpy(p, s->root_path);
  for (size_t i = 1; i < s->depth; i++) { strcat(p, "/"); strcat(p, s->levels[i].name); }
  if (name) { strcat(p, "/"); strcat(p, name); }
  return p;
}

static int fail(struct scan *s, struct failure *f, int err, const char *syscall_name, const char *name) {
  f->err = err;
  f->syscall = syscall_name;
  f->path = scan_path(s, name);
  return -1;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Reads a whole directory and sorts its names (SCAN_SORTED). Returns 0 or -1 with errno set.
static int level_read_sorted(struct level *l) {
  for (;;) {
    if (l->cap - l->len < DENTS_CHUNK) {
      size_t cap = l->cap ? l->cap * 2 : DENTS_CHUNK * 2;
      uint8_t *p = realloc(l->buf, cap);
      if (!p) { errno = ENOMEM; return -1; }
      l->buf = p;
      l->cap = cap;
    }
    long n = getdents(l->fd, l->buf + l->len, l->cap - l->len);
    if (n < 0) return -1;
    if (n == 0) break;
    l->len += (size_t)n;
  }
  size_t count = 0;
  for (size_t off = 0; off < l->len; off += ((struct dirent64_raw *)(l->buf + off))->d_reclen) count++;
  l->sorted = malloc((count ? count : 1) * sizeof(char *));
  if (!l->sorted) { errno = ENOMEM; return -1; }
  l->n = 0;
  for (size_t off = 0; off < l->len;) {
    struct dirent64_raw *d = (struct dirent64_raw *)(l->buf + off);
    if (!dot_or_dotdot(d->d_name)) l->sorted[l->n++] = d->d_name;
    off += d->d_reclen;
  }
  qsort(l->sorted, l->n, sizeof(char *), cmp_names);
  l->eof = true;
  return 0;
}

// The next name of a directory, or NULL at its end (errno 0) or on error (errno set).
static const char *level_next(struct level *l, uint32_t flags) {
  if (flags & SCAN_SORTED) {
    if (!l->sorted) {
      if (level_read_sorted(l) != 0) return NULL;
    }
    errno = 0;
    return l->i < l->n ? l->sorted[l->i++] : NULL;
  }
  for (;;) {
    while (l->pos < l->len) {
      struct dirent64_raw *d = (struct dirent64_raw *)(l->buf + l->pos);
      l->pos += d->d_reclen;
      if (!dot_or_dotdot(d->d_name)) return d->d_name;
    }
    errno = 0;
    if (l->eof) return NULL;
    if (!l->buf) {
      if (!(l->buf = malloc(DENTS_CHUNK))) { errno = ENOMEM; return NULL; }
      l->cap = DENTS_CHUNK;
    }
    long n = getdents(l->fd, l->buf, l->cap);
    if (n < 0) return NULL;
    l->len = (size_t)n;
    l->pos = 0;
    if (n == 0) l->eof = true;
  }
}

static int scan_push(struct scan *s, int fd, const char *name) {
  if (s->depth == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct level *p = realloc(s->levels, cap * sizeof *p);
    if (!p) { errno = ENOMEM; return -1; }
    s->levels = p;
    s->cap = cap;
  }
  struct level *l = &s->levels[s->depth];
  memset(l, 0, sizeof *l);
  l->fd = fd;
  if (name && !(l->name = strdup(name))) { errno = ENOMEM; return -1; }
  s->depth++;
  return 0;
}

// Examines the next entry of the walk into s->pend. Returns 1 ready, 0 walk finished, -1 failure.
static int scan_prepare(struct scan *s, struct failure *f) {
  struct pending *p = &s->pend;
  for (;;) {
    if (s->depth == 0) return 0;
    struct level *l = &s->levels[s->depth - 1];
    const char *name = level_next(l, s->flags);
    if (!name) {
      if (errno) return fail(s, f, errno, "getdents64", NULL);
      level_free(l);
      s->depth--;
      continue;
    }
    struct stat st;
    if (fstatat(l->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue; // vanished since getdents
      return fail(s, f, errno, "fstatat", name);
    }
    fill_record(&p->rec, &st);
    if (s->depth > UINT16_MAX) return fail(s, f, EOVERFLOW, "scan", name);
    p->rec.depth = (uint16_t)s->depth;
    p->name_len = strlen(name);
    memcpy(p->name, name, p->name_len + 1);
    p->child_fd = -1;
    if (S_ISDIR(st.st_mode) && !(s->flags & SCAN_NO_RECURSE)) {
      p->child_fd = openat(l->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (p->child_fd < 0) {
        if (errno == ENOENT) continue;
        return fail(s, f, errno, "openat", name);
      }
    }
    const char *which;
    if ((s->flags & (SCAN_OPAQUE | SCAN_REDIRECT | SCAN_METACOPY | SCAN_CAPS)) &&
        entry_xattrs(s->flags, l->fd, name, p->child_fd, &p->rec, s->tmp, &p->extra, &which) != 0) {
      int err = errno;
      if (p->child_fd >= 0) close(p->child_fd);
      p->child_fd = -1;
      if (err == ENOENT) continue;
      return fail(s, f, err, which, name);
    }
    if (!(s->flags & (SCAN_REDIRECT | SCAN_CAPS))) p->extra.len = 0;
    p->valid = true;
    return 1;
  }
}

// Fills one batch. Returns 0 (out_* set) or -1 (f set). Runs on any thread; touches no JS.
static int scan_fill(struct scan *s, uint8_t *rec, size_t rec_len, uint8_t *heap, size_t heap_len,
                     uint32_t *count_out, uint32_t *heap_out, bool *done_out, struct failure *f) {
  size_t count = 0, used = 0, max = rec_len / RECORD_SIZE;
  *done_out = false;
  if (s->is_broken) {
    f->err = s->broken.err;
    f->syscall = s->broken.syscall;
    f->path = s->broken.path ? strdup(s->broken.path) : NULL;
    return -1;
  }
  for (;;) {
    if (!s->pend.valid) {
      int r = scan_prepare(s, f);
      if (r == 0) { *done_out = true; break; }
      if (r < 0) {
        // Remember it; report it now if nothing was written, else with the next call.
        s->is_broken = true;
        s->broken.err = f->err;
        s->broken.syscall = f->syscall;
        s->broken.path = f->path ? strdup(f->path) : NULL;
        if (count == 0) return -1;
        failure_clear(f);
        break;
      }
    }
    struct pending *p = &s->pend;
    size_t need = p->name_len + p->extra.len;
    if (count >= max || heap_len - used < need) {
      if (count > 0) break;
      f->err = ENOBUFS;
      f->syscall = "scan";
      f->path = scan_path(s, p->name);
      return -1;
    }
    p->rec.name_off = (uint32_t)used;
    p->rec.name_len = (uint16_t)p->name_len;
    memcpy(rec + count * RECORD_SIZE, &p->rec, RECORD_SIZE);
    memcpy(heap + used, p->name, p->name_len);
    if (p->extra.len) memcpy(heap + used + p->name_len, p->extra.p, p->extra.len);
    used += need;
    count++;
    p->valid = false;
    if (p->child_fd >= 0) {
      int fd = p->child_fd;
      p->child_fd = -1;
      if (scan_push(s, fd, p->name) != 0) {
        close(fd);
        s->is_broken = true;
        s->broken.err = errno;
        s->broken.syscall = "scan";
        s->broken.path = scan_path(s, p->name);
        break; // the record is written; the failure comes with the next call
      }
    }
  }
  *count_out = (uint32_t)count;
  *heap_out = (uint32_t)used;
  return 0;
}

// scanOpen(dirfd, path, flags) -> handle
static napi_value js_scan_open(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  int64_t flags;
  char *path = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path) ||
      !arg_i64(env, argv[2], "flags", &flags))
    goto fail_out;
  int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, "openat", path, NULL); goto fail_out; }
  struct scan *s = calloc(1, sizeof *s);
  if (!s) { close(fd); throw_errno(env, ENOMEM, "scanOpen", path, NULL); goto fail_out; }
  s->magic = SCAN_MAGIC;
  s->flags = (uint32_t)flags;
  s->root_path = path;
  s->pend.child_fd = -1;
  if (scan_push(s, fd, NULL) != 0) { close(fd); scan_destroy(s); throw_errno(env, ENOMEM, "scanOpen", NULL, NULL); return NULL; }
  napi_value ext;
  if (napi_create_external(env, s, scan_finalize, NULL, &ext) != napi_ok) { scan_destroy(s); return NULL; }
  return ext;
fail_out:
  free(path);
  return NULL;
}

static struct scan *get_scan(napi_env env, napi_value v, bool allow_closed) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok ||
      !p || ((struct scan *)p)->magic != SCAN_MAGIC) {
    throw_type(env, "handle", "a scan handle from scanOpen");
    return NULL;
  }
  struct scan *s = p;
  if (!allow_closed && (s->closed || s->close_when_idle)) { throw_errno(env, EBADF, "scan", s->root_path, NULL); return NULL; }
  return s;
}

static napi_value batch_object(napi_env env, uint32_t count, uint32_t heap_used, bool done) {
  napi_value o, b;
  napi_create_object(env, &o);
  set_num_prop(env, o, "count", count);
  set_num_prop(env, o, "heapUsed", heap_used);
  napi_get_boolean(env, done, &b);
  napi_set_named_property(env, o, "done", b);
  return o;
}

static napi_value failure_error(napi_env env, struct failure *f) {
  napi_value e = errno_error(env, f->err, f->syscall, f->path, NULL);
  failure_clear(f);
  return e;
}

// scanNextSync(handle, records, heap) -> {count, heapUsed, done}
static napi_value js_scan_next_sync(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  struct scan *s = get_scan(env, argv[0], false);
  if (!s) return NULL;
  uint8_t *rec, *heap;
  size_t rec_len, heap_len;
  if (!arg_u8(env, argv[1], "records", &rec, &rec_len) || !arg_u8(env, argv[2], "heap", &heap, &heap_len)) return NULL;
  if (s->busy) { throw_errno(env, EBUSY, "scan", s->root_path, NULL); return NULL; }
  uint32_t count = 0, used = 0;
  bool done;
  struct failure f = {0};
  if (scan_fill(s, rec, rec_len, heap, heap_len, &count, &used, &done, &f) != 0) {
    napi_throw(env, failure_error(env, &f));
    return NULL;
  }
  return batch_object(env, count, used, done);
}

static void scan_work_execute(napi_env env, void *data) {
  struct scan *s = data;
  s->out_rc = scan_fill(s, s->rec_ptr, s->rec_len, s->heap_ptr, s->heap_len, &s->out_count, &s->out_heap,
                        &s->out_done, &s->out_fail);
}

static void scan_work_complete(napi_env env, napi_status status, void *data) {
  struct scan *s = data;
  napi_value cb, argv2[2], global, self;
  napi_get_reference_value(env, s->ref_cb, &cb);
  napi_get_reference_value(env, s->ref_self, &self); // keeps the handle alive until the callback ran
  if (status == napi_cancelled) {
    struct failure f = {ECANCELED, "scan", NULL};
    argv2[0] = failure_error(env, &f);
    napi_get_null(env, &argv2[1]);
  } else if (s->out_rc != 0) {
    argv2[0] = failure_error(env, &s->out_fail);
    napi_get_null(env, &argv2[1]);
  } else {
    napi_get_null(env, &argv2[0]);
    argv2[1] = batch_object(env, s->out_count, s->out_heap, s->out_done);
  }
  napi_delete_async_work(env, s->work);
  napi_delete_reference(env, s->ref_cb);
  napi_delete_reference(env, s->ref_records);
  napi_delete_reference(env, s->ref_heap);
  napi_delete_reference(env, s->ref_self);
  s->work = NULL;
  s->busy = false;
  if (s->close_when_idle) scan_close_all(s);
  napi_get_global(env, &global);
  napi_value ignored;
  napi_call_function(env, global, cb, 2, argv2, &ignored); // an exception propagates as uncaught
  (void)self;
}

// scanNext(handle, records, heap, callback)
static napi_value js_scan_next(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  struct scan *s = get_scan(env, argv[0], false);
  if (!s) return NULL;
  uint8_t *rec, *heap;
  size_t rec_len, heap_len;
  if (!arg_u8(env, argv[1], "records", &rec, &rec_len) || !arg_u8(env, argv[2], "heap", &heap, &heap_len)) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) { throw_type(env, "callback", "a function"); return NULL; }
  if (s->busy) { throw_errno(env, EBUSY, "scan", s->root_path, NULL); return NULL; }
  napi_value name;
  napi_create_string_utf8(env, "overlay2:scanNext", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, scan_work_execute, scan_work_complete, s, &s->work) != napi_ok) return NULL;
  s->rec_ptr = rec; s->rec_len = rec_len;
  s->heap_ptr = heap; s->heap_len = heap_len;
  s->out_rc = 0;
  napi_create_reference(env, argv[0], 1, &s->ref_self);
  napi_create_reference(env, argv[1], 1, &s->ref_records);
  napi_create_reference(env, argv[2], 1, &s->ref_heap);
  napi_create_reference(env, argv[3], 1, &s->ref_cb);
  s->busy = true;
  if (napi_queue_async_work(env, s->work) != napi_ok) {
    s->busy = false;
    napi_delete_async_work(env, s->work);
    napi_delete_reference(env, s->ref_self); napi_delete_reference(env, s->ref_records);
    napi_delete_reference(env, s->ref_heap); napi_delete_reference(env, s->ref_cb);
    throw_errno(env, EAGAIN, "scan", s->root_path, NULL);
    return NULL;
  }
  return undefined(env);
}

// scanClose(handle): closes every fd now, or when an in-flight scanNext completes. Idempotent.
static napi_value js_scan_close(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  struct scan *s = get_scan(env, argv[0], true);
  if (!s) return NULL;
  if (s->busy) s->close_when_idle = true;
  else scan_close_all(s);
  return undefined(env);
}

// lookupBatch(dirfd, names, count, records, heap, flags) -> heap bytes used.
// Extras (caps/redirect) are packed in heap one after another in record order.
static napi_value js_lookup_batch(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  int32_t dirfd;
  int64_t count, flags64;
  uint8_t *names, *rec, *heap;
  size_t names_len, rec_len, heap_len;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_u8(env, argv[1], "names", &names, &names_len) ||
      !arg_i64(env, argv[2], "count", &count) || !arg_u8(env, argv[3], "records", &rec, &rec_len) ||
      !arg_u8(env, argv[4], "heap", &heap, &heap_len) || !arg_i64(env, argv[5], "flags", &flags64))
    return NULL;
  uint32_t flags = (uint32_t)flags64;
  if (count < 0 || (uint64_t)count > rec_len / RECORD_SIZE) { throw_errno(env, ENOBUFS, "lookup", NULL, NULL); return NULL; }
  // Validate every name before touching the filesystem.
  size_t off = 0;
  for (int64_t i = 0; i < count; i++) {
    uint8_t *end = memchr(names + off, 0, names_len - off);
    if (!end) { throw_errno(env, EINVAL, "lookup", NULL, NULL); return NULL; }
    size_t len = (size_t)(end - (names + off));
    if (memchr(names + off, '/', len) || len > NAME_MAX) {
      throw_errno(env, len > NAME_MAX ? ENAMETOOLONG : EINVAL, "lookup", (char *)names + off, NULL);
      return NULL;
    }
    off += len + 1;
  }
  struct xbuf tmp[2] = {{0}, {0}}, extra = {0};
  size_t used = 0;
  off = 0;
  napi_value ret = NULL;
  for (int64_t i = 0; i < count; i++) {
    const char *name = (const char *)names + off;
    size_t len = strlen(name);
    struct scan_record r;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      memset(&r, 0, sizeof r);
      r.nlink = (uint32_t)errno;
      r.flags = FLAG_FAILED;
    } else {
      fill_record(&r, &st);
      const char *which;
      extra.len = 0;
      if ((flags & (SCAN_OPAQUE | SCAN_REDIRECT | SCAN_METACOPY | SCAN_CAPS)) &&
          entry_xattrs(flags, dirfd, name, -1, &r, tmp, &extra, &which) != 0) {
        throw_errno(env, errno, which, name, NULL);
        goto out;
      }
      if (extra.len > heap_len - used) { throw_errno(env, ENOBUFS, "lookup", name, NULL); goto out; }
      memcpy(heap + used, extra.p, extra.len);
      used += extra.len;
    }
    r.name_off = (uint32_t)off;
    r.name_len = (uint16_t)len;
    memcpy(rec + i * RECORD_SIZE, &r, RECORD_SIZE);
    off += len + 1;
  }
  ret = number(env, (double)used);
out:
  free(tmp[0].p);
  free(tmp[1].p);
  free(extra.p);
  return ret;
}

// ---------------------------------------------------------------------------------------------
// Tree removal: deletes `path` (relative, resolved beneath dirfd) and everything below it through
// directory fds only; no path string below dirfd is ever resolved. Each directory is opened from its
// parent's fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV), so a name swapped for a symlink is unlinked, never followed, and a mount point
// (bind mounts of the same filesystem included) is never entered: EXDEV, reported, nothing below it
// touched. A name that changes type under the walk (open: ENOTDIR/ELOOP, unlink: EISDIR, rmdir:
// ENOTEMPTY/ENOTDIR) is tried again as what it now is, at most RM_RETRIES times, then reported.
// A path that does not exist is not an error: there is nothing to remove.
//
// The walk is iterative (the stack is on the heap, so depth costs no C stack) and holds at most
// RM_MAX_OPEN directory fds: going deeper closes the shallowest open level, which is reopened later
// downward by name from the nearest open ancestor with the same resolve flags (never through "..",
// so a directory moved meanwhile cannot lead the walk out of the tree).

#ifndef RESOLVE_NO_XDEV
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#endif
#define RM_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
#define RM_MAX_OPEN 128          // directory fds one removal holds at most (beside its anchor)
#define RM_RETRIES 16            // attempts per name that keeps changing type or refilling
#define RM_SAVE_BUDGET (4u << 20) // bytes of unread dirents kept for levels waiting on a child

struct rm_level {
  int fd;              // -1 while closed to stay under RM_MAX_OPEN
  char *name;          // name in the parent level (level 0, the anchor: NULL)
  uint8_t *saved;      // this level's unread getdents bytes while a child is walked, or NULL
  size_t len, pos;     // extent of saved, or of the shared buffer while this is the top level
  bool rewind;         // unread bytes were dropped (budget): read the directory again from its start
  unsigned tries;      // attempts spent on this name (type changes, refills)
};

struct rm_walk {
  struct rm_level *levels;
  size_t depth, cap, open, saved_bytes;
  size_t low;          // levels 1 .. low-1 are closed (the open ones form a window above them)
  uint8_t *buf;        // getdents64 bytes of the top level
  const char *root_path;
  struct failure f;
};

static int rm_open_dir(int dirfd, const char *name) {
  struct shim_open_how how = {O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, RM_RESOLVE};
  return (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
}

// The path of `name` in the top level (NULL: the top level itself), for error messages.
static char *rm_path(struct rm_walk *w, const char *name) {
  bool is_root = w->depth == 1 && name; // the root is the one entry of the anchor
  size_t len = strlen(w->root_path) + 2 + (name && !is_root ? strlen(name) + 1 : 0);
  for (size_t i = 2; i < w->depth; i++) len += strlen(w->levels[i].name) + 1;
  char *p = malloc(len);
  if (!p) return NULL;
  strcpy(p, w->root_path);
  for (size_t i = 2; i < w->depth; i++) { strcat(p, "/"); strcat(p, w->levels[i].name); }
  if (name && !is_root) { strcat(p, "/"); strcat(p, name); }
  return p;
}

static int rm_fail(struct rm_walk *w, int err, const char *syscall_name, const char *name) {
  w->f.err = err;
  w->f.syscall = syscall_name;
  w->f.path = rm_path(w, name);
  return -1;
}

static void rm_close_level(struct rm_walk *w, struct rm_level *l) {
  if (l->fd >= 0) { close(l->fd); if (l != &w->levels[0]) w->open--; }
  l->fd = -1;
}

static void rm_drop_level(struct rm_walk *w, struct rm_level *l) {
  rm_close_level(w, l);
  free(l->name);
  if (l->saved) { free(l->saved); w->saved_bytes -= l->len; }
  memset(l, 0, sizeof *l);
  l->fd = -1;
}

// Keeps the fd count under RM_MAX_OPEN by closing the shallowest open level below the top.
static void rm_make_room(struct rm_walk *w, size_t top) {
  if (w->open < RM_MAX_OPEN) return;
  for (size_t i = w->low > 1 ? w->low : 1; i < top; i++)
    if (w->levels[i].fd >= 0) { rm_close_level(w, &w->levels[i]); w->low = i + 1; return; }
}

// Reopens the top level (and the closed levels above it) by name from the nearest open ancestor.
static int rm_reopen(struct rm_walk *w) {
  size_t a = w->depth - 1;
  while (w->levels[a].fd < 0) a--; // the anchor never closes
  if (w->low > (a ? a : 1)) w->low = a ? a : 1; // keeps "levels below low are closed" true
  for (size_t j = a + 1; j < w->depth; j++) {
    int fd = rm_open_dir(w->levels[j - 1].fd, w->levels[j].name);
    if (fd < 0) {
      int err = errno;
      size_t depth = w->depth;
      w->depth = j; // name the level that could not be reopened
      rm_fail(w, err, "openat2", w->levels[j].name);
      w->depth = depth;
      return -1;
    }
    rm_make_room(w, j);
    w->levels[j].fd = fd;
    w->levels[j].rewind = false; // a fresh fd reads from the start
    w->open++;
  }
  return 0;
}

static int rm_push(struct rm_walk *w, int fd, const char *name, unsigned tries) {
  struct rm_level *top = &w->levels[w->depth - 1];
  if (!top->saved && top->pos < top->len) { // the shared buffer is about to be reused by the child
    size_t rest = top->len - top->pos;
    uint8_t *copy = w->saved_bytes + rest <= RM_SAVE_BUDGET ? malloc(rest) : NULL;
    if (copy) {
      memcpy(copy, w->buf + top->pos, rest);
      top->saved = copy;
      w->saved_bytes += rest;
      top->len = rest;
    } else {
      top->rewind = true;
      top->len = 0;
    }
    top->pos = 0;
  }
  if (w->depth == w->cap) {
    size_t cap = w->cap * 2;
    struct rm_level *p = realloc(w->levels, cap * sizeof *p);
    if (!p) { close(fd); return rm_fail(w, ENOMEM, "rmtree", name); }
    w->levels = p;
    w->cap = cap;
  }
  char *copy = strdup(name);
  if (!copy) { close(fd); return rm_fail(w, ENOMEM, "rmtree", name); }
  rm_make_room(w, w->depth);
  struct rm_level *l = &w->levels[w->depth++];
  memset(l, 0, sizeof *l);
  l->fd = fd;
  l->name = copy;
  l->tries = tries;
  w->open++;
  return 0;
}

// Removes `name` from the top level: unlinks a non-directory, or opens a directory and pushes it
// (emptied by the main loop, then removed by rm_rmdir).
static int rm_entry(struct rm_walk *w, const char *name, bool as_dir, unsigned tries) {
  int pfd = w->levels[w->depth - 1].fd;
  int err = 0;
  const char *what = "unlinkat";
  for (; tries < RM_RETRIES; tries++) {
    if (!as_dir) {
      if (unlinkat(pfd, name, 0) == 0 || errno == ENOENT) return 0;
      if (errno != EISDIR) return rm_fail(w, errno, "unlinkat", name);
      err = errno; what = "unlinkat";
      as_dir = true;
      continue;
    }
    int fd = rm_open_dir(pfd, name);
    if (fd >= 0) return rm_push(w, fd, name, tries);
    if (errno == ENOENT) return 0;
    if (errno != ENOTDIR && errno != ELOOP) return rm_fail(w, errno, "openat2", name);
    err = errno; what = "openat2";
    as_dir = false; // now a symlink or a file: unlink it, never follow it
  }
  return rm_fail(w, err ? err : EAGAIN, what, name);
}

// Removes the emptied directory `name` from the (new) top level.
static int rm_rmdir(struct rm_walk *w, const char *name, unsigned tries) {
  if (w->levels[w->depth - 1].fd < 0 && rm_reopen(w) != 0) return -1;
  int pfd = w->levels[w->depth - 1].fd;
  if (unlinkat(pfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return 0;
  if (errno == ENOTEMPTY || errno == EEXIST) { // refilled, or swapped for another directory
    if (tries + 1 >= RM_RETRIES) return rm_fail(w, errno, "unlinkat", name);
    return rm_entry(w, name, true, tries + 1);
  }
  if (errno == ENOTDIR) return rm_entry(w, name, false, tries + 1); // swapped for a non-directory
  return rm_fail(w, errno, "unlinkat", name);
}

// The next entry of the top level; NULL at its end (errno 0) or on failure (errno set).
static struct dirent64_raw *rm_next(struct rm_walk *w, struct rm_level *l) {
  for (;;) {
    uint8_t *chunk = l->saved ? l->saved : w->buf;
    while (l->pos < l->len) {
      struct dirent64_raw *d = (struct dirent64_raw *)(chunk + l->pos);
      l->pos += d->d_reclen;
      if (!dot_or_dotdot(d->d_name)) return d;
    }
    if (l->saved) { free(l->saved); w->saved_bytes -= l->len; l->saved = NULL; }
    l->len = l->pos = 0;
    if (l->rewind) {
      if (lseek(l->fd, 0, SEEK_SET) < 0) return NULL;
      l->rewind = false;
    }
    long n = getdents(l->fd, w->buf, DENTS_CHUNK);
    if (n <= 0) { errno = n < 0 ? errno : 0; return NULL; }
    l->len = (size_t)n;
  }
}

static void rm_walk_free(struct rm_walk *w) {
  for (size_t i = 0; i < w->depth; i++) rm_drop_level(w, &w->levels[i]);
  free(w->levels);
  free(w->buf);
}

// Runs on any thread; touches no JS. Returns 0, or -1 with *f set (the caller frees f->path).
static int rm_tree(int dirfd, const char *path, struct failure *f) {
  struct rm_walk w = {0};
  w.root_path = path;
  int rc = -1;
  // Split "a/b/name" into the anchor "a/b" (opened beneath dirfd) and the root's name.
  size_t plen = strlen(path);
  while (plen > 1 && path[plen - 1] == '/') plen--;
  char *anchor = strndup(path, plen);
  if (!anchor) { f->err = ENOMEM; f->syscall = "rmtree"; f->path = strdup(path); return -1; }
  char *slash = strrchr(anchor, '/');
  const char *name = slash ? slash + 1 : anchor;
  if (slash) *slash = 0;
  const char *anchor_path = slash ? (anchor[0] ? anchor : "/") : ".";
  if (!*name || dot_or_dotdot(name) || plen == 0) {
    f->err = EINVAL; f->syscall = "rmtree"; f->path = strdup(path);
    free(anchor);
    return -1;
  }
  w.cap = 64;
  w.levels = calloc(w.cap, sizeof *w.levels);
  w.buf = malloc(DENTS_CHUNK);
  if (!w.levels || !w.buf) { rm_fail(&w, ENOMEM, "rmtree", NULL); goto out; }
  struct shim_open_how how = {O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RM_RESOLVE};
  int afd = (int)syscall(SYS_openat2, dirfd, anchor_path, &how, sizeof how);
  if (afd < 0) {
    if (errno == ENOENT) { rc = 0; goto out; }
    w.f.err = errno; w.f.syscall = "openat2"; w.f.path = strdup(path);
    goto out;
  }
  w.levels[0].fd = afd;
  w.depth = 1;
  if (rm_entry(&w, name, true, 0) != 0) goto out;
  while (w.depth > 1) {
    struct rm_level *l = &w.levels[w.depth - 1];
    if (l->fd < 0 && rm_reopen(&w) != 0) goto out;
    struct dirent64_raw *d = rm_next(&w, l);
    if (d) {
      // DT_UNKNOWN and non-directories are unlinked first; EISDIR sends them to the directory path.
      if (rm_entry(&w, d->d_name, d->d_type == DT_DIR, 0) != 0) goto out;
      continue;
    }
    if (errno) { rm_fail(&w, errno, "getdents64", NULL); goto out; }
    char *done = l->name;
    unsigned tries = l->tries;
    l->name = NULL;
    rm_drop_level(&w, l);
    w.depth--;
    int r = rm_rmdir(&w, done, tries);
    free(done);
    if (r != 0) goto out;
  }
  rc = 0;
out:
  if (rc != 0) *f = w.f;
  rm_walk_free(&w);
  free(anchor);
  return rc;
}

struct rm_job {
  napi_async_work work;
  napi_ref cb;
  int dirfd;
  char *path;
  int rc;
  struct failure f;
};

static void rm_work_execute(napi_env env, void *data) {
  struct rm_job *j = data;
  j->rc = rm_tree(j->dirfd, j->path, &j->f);
}

static void rm_work_complete(napi_env env, napi_status status, void *data) {
  struct rm_job *j = data;
  napi_value cb, global, argv1[1], ignored;
  napi_get_reference_value(env, j->cb, &cb);
  if (status == napi_cancelled) {
    struct failure f = {ECANCELED, "rmtree", j->path ? strdup(j->path) : NULL};
    argv1[0] = failure_error(env, &f);
  } else if (j->rc != 0) {
    argv1[0] = failure_error(env, &j->f);
  } else {
    napi_get_null(env, &argv1[0]);
  }
  napi_delete_async_work(env, j->work);
  napi_delete_reference(env, j->cb);
  free(j->path);
  free(j);
  napi_get_global(env, &global);
  napi_call_function(env, global, cb, 1, argv1, &ignored); // an exception propagates as uncaught
}

// removeTree(dirfd, path, callback): the whole walk on the libuv pool; callback(err | null).
static napi_value js_remove_tree(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  char *path = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path)) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) { free(path); throw_type(env, "callback", "a function"); return NULL; }
  struct rm_job *j = calloc(1, sizeof *j);
  if (!j) { free(path); throw_errno(env, ENOMEM, "rmtree", NULL, NULL); return NULL; }
  j->dirfd = dirfd;
  j->path = path;
  napi_value name;
  napi_create_string_utf8(env, "overlay2:removeTree", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, rm_work_execute, rm_work_complete, j, &j->work) != napi_ok) {
    free(path); free(j);
    return NULL;
  }
  napi_create_reference(env, argv[2], 1, &j->cb);
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    napi_delete_reference(env, j->cb);
    throw_errno(env, EAGAIN, "rmtree", path, NULL);
    free(path); free(j);
    return NULL;
  }
  return undefined(env);
}

// removeTreeSync(dirfd, path)
static napi_value js_remove_tree_sync(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t dirfd;
  char *path = NULL;
  if (!arg_i32(env, argv[0], "dirfd", &dirfd) || !arg_string(env, argv[1], "path", false, &path)) return NULL;
  struct failure f = {0};
  napi_value ret = NULL;
  if (rm_tree(dirfd, path, &f) != 0) napi_throw(env, failure_error(env, &f));
  else ret = undefined(env);
  free(path);
  return ret;
}

// ---------------------------------------------------------------------------------------------

static napi_value init(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    {"mount", js_mount}, {"mountAt", js_mount_at}, {"umount2", js_umount2}, {"fsopen", js_fsopen},
    {"fsconfig", js_fsconfig}, {"fsmount", js_fsmount}, {"moveMount", js_move_mount},
    {"lgetxattr", js_lgetxattr}, {"lsetxattr", js_lsetxattr}, {"llistxattr", js_llistxattr},
    {"lremovexattr", js_lremovexattr}, {"fgetxattr", js_fgetxattr}, {"fsetxattr", js_fsetxattr},
    {"statfs", js_statfs}, {"direntTypes", js_dirent_types}, {"syncfs", js_syncfs},
    {"openat2", js_openat2}, {"mkdirat", js_mkdirat}, {"mknodat", js_mknodat}, {"symlinkat", js_symlinkat},
    {"linkat", js_linkat}, {"unlinkat", js_unlinkat}, {"renameat2", js_renameat2}, {"fchownat", js_fchownat},
    {"fchmodat", js_fchmodat}, {"utimensat", js_utimensat},
    {"scanOpen", js_scan_open}, {"scanNext", js_scan_next}, {"scanNextSync", js_scan_next_sync},
    {"scanClose", js_scan_close}, {"lookupBatch", js_lookup_batch},
    {"removeTree", js_remove_tree}, {"removeTreeSync", js_remove_tree_sync},
    {"fsxattrGet", js_fsxattr_get}, {"fsxattrSet", js_fsxattr_set},
    {"xfsQuotaSetLimit", js_xfs_quota_set_limit}, {"xfsQuotaGet", js_xfs_quota_get},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok) return NULL;
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  set_num_prop(env, exports, "UTIME_NOW", (double)UTIME_NOW);
  set_num_prop(env, exports, "UTIME_OMIT", (double)UTIME_OMIT);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
