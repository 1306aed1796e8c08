// Extended attributes: the one ERANGE-retrying reader (see xattr.h) and the xattr exports.
#include "xattr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <limits.h>
#include <fcntl.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"
#include "syscalls.h"

int xbuf_reserve(struct xbuf *b, size_t n) {
  if (n <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < n) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) { errno = ENOMEM; return -1; }
  b->p = p;
  b->cap = cap;
  return 0;
}

static int have_xattrat = 1; // cleared once the kernel answers ENOSYS (getxattrat/listxattrat: Linux 6.13+)

// One getxattr (name) or listxattr (name NULL). For XATTR_AT the *xattrat syscalls are ~2.5x cheaper
// than the /proc/self/fd/N/name path walk older kernels need.
static ssize_t xattr_call(const struct xattr_target *t, const char *name, void *buf, size_t size) {
  switch (t->via) {
  case XATTR_PATH: return name ? lgetxattr(t->path, name, buf, size) : llistxattr(t->path, buf, size);
  case XATTR_FD: return name ? fgetxattr(t->fd, name, buf, size) : flistxattr(t->fd, buf, size);
  case XATTR_AT: break;
  }
  if (__atomic_load_n(&have_xattrat, __ATOMIC_RELAXED)) {
    long r;
    if (name) {
      struct shim_xattr_args a = {(uint64_t)(uintptr_t)buf, (uint32_t)size, 0};
      r = syscall(SYS_getxattrat, t->fd, t->path, AT_SYMLINK_NOFOLLOW, name, &a, sizeof a);
    } else {
      r = syscall(SYS_listxattrat, t->fd, t->path, AT_SYMLINK_NOFOLLOW, buf, size);
    }
    if (r >= 0 || errno != ENOSYS) return r;
    __atomic_store_n(&have_xattrat, 0, __ATOMIC_RELAXED);
  }
  char p[64 + NAME_MAX + 1];
  snprintf(p, sizeof p, "/proc/self/fd/%d/%s", t->fd, t->path);
  return name ? lgetxattr(p, name, buf, size) : llistxattr(p, buf, size);
}

ssize_t xattr_read(const struct xattr_target *t, const char *name, struct xbuf *b) {
  if (xbuf_reserve(b, 256) != 0) return -1;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t n = xattr_call(t, name, b->p, b->cap);
    if (n >= 0) { b->len = (size_t)n; return n; }
    if (errno != ERANGE) return -1;
    n = xattr_call(t, name, NULL, 0); // its size now; it may grow again before the next read
    if (n < 0) return -1;
    if (xbuf_reserve(b, (size_t)n + 1) != 0) return -1;
  }
  errno = ERANGE;
  return -1;
}

int xattr_list_has(const struct xbuf *list, const char *name) {
  size_t want = strlen(name) + 1;
  for (size_t i = 0; i < list->len;) {
    const char *n = (const char *)list->p + i;
    size_t l = strnlen(n, list->len - i) + 1;
    if (l == want && memcmp(n, name, want - 1) == 0) return 1;
    i += l;
  }
  return 0;
}

// lgetxattr(path, name) -> Buffer | null (null: the attribute is absent)
napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *path = NULL, *name = NULL;
  struct xbuf b = {0};
  napi_value ret = NULL;
  if (!arg_path(env, argv[0], &path) || !arg_string(env, argv[1], &name)) goto out;
  struct xattr_target t = {XATTR_PATH, -1, path};
  if (xattr_read(&t, name, &b) >= 0) napi_create_buffer_copy(env, b.len, b.p, NULL, &ret);
  else if (errno == ENODATA) napi_get_null(env, &ret);
  else throw_errno(env, errno, "lgetxattr", path, NULL);
out:
  free(path); free(name); free(b.p);
  return ret;
}

// llistxattr(path) -> string[]
napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char *path = NULL;
  struct xbuf b = {0};
  napi_value ret = NULL;
  if (!arg_path(env, argv[0], &path)) goto out;
  struct xattr_target t = {XATTR_PATH, -1, path};
  if (xattr_read(&t, NULL, &b) < 0) { throw_errno(env, errno, "llistxattr", path, NULL); goto out; }
  napi_create_array(env, &ret);
  uint32_t idx = 0;
  for (size_t i = 0; i < b.len;) {
    size_t l = strnlen((char *)b.p + i, b.len - i);
    if (l > 0) {
      napi_value s;
      napi_create_string_utf8(env, (char *)b.p + i, l, &s);
      napi_set_element(env, ret, idx++, s);
    }
    i += l + 1;
  }
out:
  free(path); free(b.p);
  return ret;
}

// lsetxattr(path, name, value, flags)
napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  char *path = NULL, *name = NULL, *owned = NULL;
  uint8_t *value;
  size_t len;
  int32_t flags;
  napi_value ret = NULL;
  if (!arg_path(env, argv[0], &path) || !arg_string(env, argv[1], &name) ||
      !arg_bytes_or_string(env, argv[2], &value, &len, &owned) || !arg_i32(env, argv[3], &flags))
    goto out;
  if (lsetxattr(path, name, value, len, flags) != 0) throw_errno(env, errno, "lsetxattr", path, NULL);
  else ret = js_undefined(env);
out:
  free(path); free(name); free(owned);
  return ret;
}

// fsetxattr(fd, name, value, flags)
napi_value js_fsetxattr(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int32_t fd, flags;
  char *name = NULL, *owned = NULL;
  uint8_t *value;
  size_t len;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &fd) || !arg_string(env, argv[1], &name) ||
      !arg_bytes_or_string(env, argv[2], &value, &len, &owned) || !arg_i32(env, argv[3], &flags))
    goto out;
  if (fsetxattr(fd, name, value, len, flags) != 0) throw_errno(env, errno, "fsetxattr", NULL, NULL);
  else ret = js_undefined(env);
out:
  free(name); free(owned);
  return ret;
}
