// Reading directories with getdents64 (see dirents.h) and the direntTypes export.
#include "dirents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"

bool dot_or_dotdot(const char *n) { return n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0)); }

long dirents_read(int fd, uint8_t *buf, size_t size) { return syscall(SYS_getdents64, fd, buf, size); }

const struct dirent64_raw *dirents_step(const uint8_t *buf, size_t len, size_t *pos) {
  while (*pos < len) {
    const struct dirent64_raw *d = (const struct dirent64_raw *)(buf + *pos);
    *pos += d->d_reclen;
    if (!dot_or_dotdot(d->d_name)) return d;
  }
  return NULL;
}

const struct dirent64_raw *dir_stream_next(struct dir_stream *d) {
  for (;;) {
    const struct dirent64_raw *e = dirents_step(d->buf, d->len, &d->pos);
    if (e) return e;
    errno = 0;
    if (d->eof) return NULL;
    if (!d->keep) d->len = d->pos = 0;
    if (d->cap - d->len < DENTS_CHUNK) {
      size_t cap = d->cap ? d->cap * 2 : DENTS_CHUNK;
      uint8_t *p = realloc(d->buf, cap);
      if (!p) { errno = ENOMEM; return NULL; }
      d->buf = p;
      d->cap = cap;
    }
    long n = dirents_read(d->fd, d->buf + d->len, d->cap - d->len);
    if (n < 0) return NULL;
    if (n == 0) d->eof = true;
    d->len += (size_t)n;
  }
}

void dir_stream_free(struct dir_stream *d) {
  free(d->buf);
  d->buf = NULL;
  d->cap = d->len = d->pos = 0;
}

// direntTypes(path) -> d_type of each entry ("." and ".." excluded), so callers can tell whether the
// filesystem fills d_type (0 = DT_UNKNOWN).
napi_value js_dirent_types(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char *path = NULL;
  napi_value ret = NULL, arr;
  if (!arg_path(env, argv[0], &path)) return NULL;
  struct dir_stream d = {.fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) { throw_errno(env, errno, "open", path, NULL); goto out; }
  napi_create_array(env, &arr);
  uint32_t idx = 0;
  const struct dirent64_raw *e;
  while ((e = dir_stream_next(&d))) napi_set_element(env, arr, idx++, js_number(env, e->d_type));
  if (errno) throw_errno(env, errno, "getdents64", path, NULL);
  else ret = arr;
  close(d.fd);
out:
  dir_stream_free(&d);
  free(path);
  return ret;
}
