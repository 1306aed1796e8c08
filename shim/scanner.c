// The scanner: a batched, resumable depth-first walk that writes packed records (layout: records.h)
// and names into caller-provided memory, and lookupBatch, the same records for a list of names. Which
// xattrs an entry gets asked for comes from the caller's plan (xattr_plan.h): no attribute name, value
// or file-type rule of overlay's is written here.
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <limits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirents.h"
#include "errors.h"
#include "exports.h"
#include "napi_args.h"
#include "records.h"
#include "xattr.h"
#include "xattr_plan.h"

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

// A plan argument: a Uint8Array (xattr_plan.h) or null/undefined (no attributes).
static bool arg_plan(napi_env env, napi_value v, struct xattr_plan *plan) {
  uint8_t *p = NULL;
  size_t len = 0;
  if (!is_nullish(env, v) && !arg_bytes(env, v, &p, &len)) return false;
  if (!xattr_plan_decode(p, len, plan)) { throw_errno(env, EINVAL, "scan", NULL, NULL); return false; }
  return true;
}

// Attribute xname (NULL: the name list) of entry `name` in dirfd, or of fd when fd >= 0, into b.
// Returns 1 present, 0 absent (or the filesystem has no xattrs), -1 error (errno set).
static int entry_xattr(int dirfd, const char *name, int fd, const char *xname, struct xbuf *b) {
  struct xattr_target t = fd >= 0 ? (struct xattr_target){XATTR_FD, fd, NULL} : (struct xattr_target){XATTR_AT, dirfd, name};
  if (xattr_read(&t, xname, b) >= 0) return 1;
  return (errno == ENODATA || errno == EOPNOTSUPP) ? 0 : -1;
}

// The xattr part of a record: sets r->flags, reads the plan's extra into extra. When more than one
// attribute is asked for, one listxattr first spares the gets of absent ones (most entries have none).
// bufs: two scratch buffers. Returns 0, or -1 with errno set and *which naming the syscall.
static int entry_xattrs(const struct xattr_plan *plan, int dirfd, const char *name, int fd, struct scan_record *r,
                        struct xbuf bufs[2], struct xbuf *extra, const char **which) {
  const struct xattr_kind_plan *k = &plan->kinds[S_ISDIR(r->mode) ? 0 : S_ISREG(r->mode) ? 1 : 2];
  bool present[PLAN_MAX_TESTS], extra_present = k->has_extra;
  for (int i = 0; i < k->ntests; i++) present[i] = true;
  extra->len = 0;
  if (!k->ntests && !k->has_extra) return 0;
  struct xbuf *tmp = &bufs[0], *list = &bufs[1];
  int got;
  if (k->ntests + (k->has_extra ? 1 : 0) > 1) {
    *which = fd >= 0 ? "flistxattr" : "llistxattr";
    if ((got = entry_xattr(dirfd, name, fd, NULL, list)) < 0) return -1;
    if (!got) list->len = 0;
    for (int i = 0; i < k->ntests; i++) present[i] = xattr_list_has(list, k->tests[i].name);
    if (k->has_extra) extra_present = xattr_list_has(list, k->extra_name);
  }
  *which = fd >= 0 ? "fgetxattr" : "lgetxattr";
  for (int i = 0; i < k->ntests; i++) {
    const struct xattr_test *t = &k->tests[i];
    if (!present[i]) continue;
    if ((got = entry_xattr(dirfd, name, fd, t->name, tmp)) < 0) return -1;
    if (got && (!t->has_value || (tmp->len == t->value_len && memcmp(tmp->p, t->value, t->value_len) == 0)))
      r->flags |= t->bit;
  }
  if (extra_present) {
    if ((got = entry_xattr(dirfd, name, fd, k->extra_name, extra)) < 0) return -1;
    if (got) r->flags |= k->extra_bit;
    else extra->len = 0;
  }
  if (extra->len > UINT16_MAX) { errno = EOVERFLOW; return -1; }
  r->extra_len = (uint16_t)extra->len;
  return 0;
}

// SCAN_INLINE_DATA: the `size` bytes of regular file `name` into data, FLAG_DATA on r; nothing
// when it cannot be opened or holds fewer bytes now (the caller's own read reports that).
static void read_inline(int dirfd, const char *name, size_t size, struct xbuf *data, struct scan_record *r) {
  if (xbuf_reserve(data, size) != 0) return;
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, data->p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got != size) return;
  data->len = size;
  r->flags |= FLAG_DATA;
}

// ---------------------------------------------------------------------------------------------
// The walk: state (one open fd + its entries per depth) lives in the handle, so a walk can stop at
// any batch boundary and resume exactly there.

#define SCAN_MAGIC 0x6f766c32u

struct level {
  struct dir_stream dir; // its fd is this level's directory
  char *name;            // this directory's name in its parent (NULL for the root), for error paths
  char **sorted;         // SCAN_SORTED: every name of the directory, in byte order
  size_t n, i;
};

struct pending {        // the next entry, fully examined but not yet written
  bool valid;
  struct scan_record rec;
  char name[NAME_MAX + 1];
  size_t name_len;
  struct xbuf extra;
  struct xbuf data;     // SCAN_INLINE_DATA: the file's contents (len 0: none)
  int child_fd;         // a directory to descend into once this record is written; -1 otherwise
};

struct scan;

struct scan_req {       // one scanNext call
  struct scan *s;
  bool used;
  uint64_t ticket;
  napi_async_work work;
  napi_ref ref_self, ref_records, ref_heap, ref_cb;
  uint8_t *rec_ptr, *heap_ptr;
  size_t rec_len, heap_len;
  uint32_t out_count, out_heap;
  bool out_done;
  int out_rc;
  struct failure out_fail;
};

struct scan {
  uint32_t magic;
  uint32_t flags;
  uint32_t shard_count, shard_index, shard_depth; // SCAN_SHARD_*; shard_count 0: not split
  struct xattr_plan plan;
  char *root_path;
  struct level *levels;
  size_t depth, cap;    // levels[0] is the root; entries of levels[d] have depth d + 1
  struct pending pend;
  struct xbuf tmp[2];
  struct failure broken; // a scan error: every later call reports it again
  bool is_broken, closed, close_when_idle;
  // async batches: up to two scanNext calls at once (one per slot of the caller's double buffer),
  // filled in call order — the second waits for its turn on the pool thread, not for the main
  // thread to come round, so the walk never pauses between batches
  struct scan_req reqs[2];
  unsigned inflight;
  uint64_t next_ticket, turn;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static void level_free(struct level *l) {
  if (l->dir.fd >= 0) close(l->dir.fd);
  dir_stream_free(&l->dir);
  free(l->name);
  free(l->sorted);
  memset(l, 0, sizeof *l);
  l->dir.fd = -1;
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
  free(s->pend.data.p);
  free(s->tmp[0].p);
  free(s->tmp[1].p);
  failure_clear(&s->broken);
  failure_clear(&s->reqs[0].out_fail);
  failure_clear(&s->reqs[1].out_fail);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
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
  size_t *offs = NULL, n = 0, cap = 0;
  const struct dirent64_raw *d;
  l->dir.keep = true; // names stay in the buffer; offsets survive its growth
  while ((d = dir_stream_next(&l->dir))) {
    if (n == cap) {
      size_t *p = realloc(offs, (cap = cap ? cap * 2 : 256) * sizeof *offs);
      if (!p) { free(offs); errno = ENOMEM; return -1; }
      offs = p;
    }
    offs[n++] = (size_t)((const uint8_t *)d->d_name - l->dir.buf);
  }
  if (errno) { free(offs); return -1; }
  l->sorted = malloc((n ? n : 1) * sizeof(char *));
  if (!l->sorted) { free(offs); errno = ENOMEM; return -1; }
  for (size_t k = 0; k < n; k++) l->sorted[k] = (char *)l->dir.buf + offs[k];
  free(offs);
  l->n = n;
  qsort(l->sorted, l->n, sizeof(char *), cmp_names);
  return 0;
}

// The next name of a directory, or NULL at its end (errno 0) or on error (errno set).
static const char *level_next(struct level *l, uint32_t flags) {
  if (flags & SCAN_SORTED) {
    if (!l->sorted && level_read_sorted(l) != 0) return NULL;
    errno = 0;
    return l->i < l->n ? l->sorted[l->i++] : NULL;
  }
  const struct dirent64_raw *d = dir_stream_next(&l->dir);
  return d ? d->d_name : NULL;
}

// FNV-1a: which shard of a split scan owns an entry (any stable spread of names will do).
static uint32_t shard_of(const char *name, uint32_t count) {
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 16777619u;
  return h % count;
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
  l->dir.fd = fd;
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
    bool copy = false; // a directory of another shard's, walked through
    if (s->shard_count && s->depth <= s->shard_depth && shard_of(name, s->shard_count) != s->shard_index) {
      unsigned char type = (unsigned char)name[-1]; // the dirent's d_type sits right before d_name
      if (s->depth == s->shard_depth || (type != DT_DIR && type != DT_UNKNOWN)) continue;
      copy = true;
    }
    struct stat st;
    if (fstatat(l->dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue; // vanished since getdents
      return fail(s, f, errno, "fstatat", name);
    }
    if (copy && !S_ISDIR(st.st_mode)) continue;
    fill_record(&p->rec, &st);
    if (s->depth > UINT16_MAX) return fail(s, f, EOVERFLOW, "scan", name);
    p->rec.depth = (uint16_t)s->depth;
    p->name_len = strlen(name);
    memcpy(p->name, name, p->name_len + 1);
    p->child_fd = -1;
    if (S_ISDIR(st.st_mode) && !(s->flags & SCAN_NO_RECURSE)) {
      p->child_fd = openat(l->dir.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (p->child_fd < 0) {
        if (errno == ENOENT) continue;
        return fail(s, f, errno, "openat", name);
      }
    }
    const char *which;
    p->extra.len = 0;
    if (s->plan.any && entry_xattrs(&s->plan, l->dir.fd, name, p->child_fd, &p->rec, s->tmp, &p->extra, &which) != 0) {
      int err = errno;
      if (p->child_fd >= 0) close(p->child_fd);
      p->child_fd = -1;
      if (err == ENOENT) continue;
      return fail(s, f, err, which, name);
    }
    if (copy) p->rec.flags |= FLAG_SHARD_COPY;
    p->data.len = 0;
    uint32_t inline_log2 = SCAN_INLINE_DATA_LOG2(s->flags);
    if (inline_log2 && S_ISREG(st.st_mode) && st.st_size > 0 && !copy && (uint64_t)st.st_size <= (1ull << inline_log2))
      read_inline(l->dir.fd, name, (size_t)st.st_size, &p->data, &p->rec);
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
    size_t need = p->name_len + p->extra.len + p->data.len;
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
    if (p->data.len) memcpy(heap + used + p->name_len + p->extra.len, p->data.p, p->data.len);
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
// scanOpen(dirfd, path, flags, plan) -> handle. flags: SCAN_SORTED, SCAN_NO_RECURSE; plan: the xattr
// plan (xattr_plan.h), or null.
napi_value js_scan_open(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int32_t dirfd;
  int64_t flags;
  char *path = NULL;
  struct xattr_plan plan;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) || !arg_i64(env, argv[2], &flags) ||
      !arg_plan(env, argv[3], &plan))
    goto fail_out;
  if (SCAN_SHARD_COUNT(flags) > 1 && (SCAN_SHARD_INDEX(flags) >= SCAN_SHARD_COUNT(flags) || SCAN_SHARD_DEPTH(flags) == 0)) {
    throw_errno(env, EINVAL, "scan", path, NULL);
    goto fail_out;
  }
  int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, "openat", path, NULL); goto fail_out; }
  struct scan *s = calloc(1, sizeof *s);
  if (!s) { close(fd); throw_errno(env, ENOMEM, "scanOpen", path, NULL); goto fail_out; }
  s->magic = SCAN_MAGIC;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  s->flags = (uint32_t)flags;
  if (SCAN_SHARD_COUNT(flags) > 1) {
    s->shard_count = SCAN_SHARD_COUNT(flags);
    s->shard_index = SCAN_SHARD_INDEX(flags);
    s->shard_depth = SCAN_SHARD_DEPTH(flags);
  }
  s->plan = plan;
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
    throw_arg_type(env);
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

// scanNextSync(handle, records, heap) -> {count, heapUsed, done}
napi_value js_scan_next_sync(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  struct scan *s = get_scan(env, argv[0], false);
  if (!s) return NULL;
  uint8_t *rec, *heap;
  size_t rec_len, heap_len;
  if (!arg_bytes(env, argv[1], &rec, &rec_len) || !arg_bytes(env, argv[2], &heap, &heap_len)) return NULL;
  if (s->inflight) { throw_errno(env, EBUSY, "scan", s->root_path, NULL); return NULL; }
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
  struct scan_req *r = data;
  struct scan *s = r->s;
  pthread_mutex_lock(&s->mu);
  while (s->turn != r->ticket) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  r->out_rc = scan_fill(s, r->rec_ptr, r->rec_len, r->heap_ptr, r->heap_len, &r->out_count, &r->out_heap,
                        &r->out_done, &r->out_fail);
  pthread_mutex_lock(&s->mu);
  s->turn++;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void scan_work_complete(napi_env env, napi_status status, void *data) {
  struct scan_req *r = data;
  struct scan *s = r->s;
  napi_value cb, argv2[2], global, self;
  napi_get_reference_value(env, r->ref_cb, &cb);
  napi_get_reference_value(env, r->ref_self, &self); // keeps the handle alive until the callback ran
  if (status == napi_cancelled) {
    pthread_mutex_lock(&s->mu); // never ran: let a later call have its turn
    if (s->turn == r->ticket) s->turn++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    struct failure f = {ECANCELED, "scan", NULL};
    argv2[0] = failure_error(env, &f);
    napi_get_null(env, &argv2[1]);
  } else if (r->out_rc != 0) {
    argv2[0] = failure_error(env, &r->out_fail);
    napi_get_null(env, &argv2[1]);
  } else {
    napi_get_null(env, &argv2[0]);
    argv2[1] = batch_object(env, r->out_count, r->out_heap, r->out_done);
  }
  napi_delete_async_work(env, r->work);
  napi_delete_reference(env, r->ref_cb);
  napi_delete_reference(env, r->ref_records);
  napi_delete_reference(env, r->ref_heap);
  napi_delete_reference(env, r->ref_self);
  r->work = NULL;
  r->used = false;
  s->inflight--;
  if (s->close_when_idle && s->inflight == 0) scan_close_all(s);
  napi_get_global(env, &global);
  napi_value ignored;
  napi_call_function(env, global, cb, 2, argv2, &ignored); // an exception propagates as uncaught
  (void)self;
}

// scanNext(handle, records, heap, callback): the next batch, filled on the libuv pool. A second call
// may come before the first one's callback (into the other buffer): it continues where the first
// stops, and its callback comes after the first's. A third is EBUSY.
napi_value js_scan_next(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  struct scan *s = get_scan(env, argv[0], false);
  if (!s) return NULL;
  uint8_t *rec, *heap;
  size_t rec_len, heap_len;
  if (!arg_bytes(env, argv[1], &rec, &rec_len) || !arg_bytes(env, argv[2], &heap, &heap_len)) return NULL;
  if (!arg_function(env, argv[3])) return NULL;
  if (s->inflight == 2) { throw_errno(env, EBUSY, "scan", s->root_path, NULL); return NULL; }
  struct scan_req *r = &s->reqs[s->reqs[0].used ? 1 : 0];
  napi_value name;
  napi_create_string_utf8(env, "overlay2:scanNext", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, scan_work_execute, scan_work_complete, r, &r->work) != napi_ok) return NULL;
  r->s = s;
  r->rec_ptr = rec; r->rec_len = rec_len;
  r->heap_ptr = heap; r->heap_len = heap_len;
  r->out_rc = 0;
  failure_clear(&r->out_fail);
  napi_create_reference(env, argv[0], 1, &r->ref_self);
  napi_create_reference(env, argv[1], 1, &r->ref_records);
  napi_create_reference(env, argv[2], 1, &r->ref_heap);
  napi_create_reference(env, argv[3], 1, &r->ref_cb);
  r->used = true;
  r->ticket = s->next_ticket++;
  s->inflight++;
  if (napi_queue_async_work(env, r->work) != napi_ok) {
    r->used = false;
    s->inflight--;
    s->next_ticket--;
    napi_delete_async_work(env, r->work);
    napi_delete_reference(env, r->ref_self); napi_delete_reference(env, r->ref_records);
    napi_delete_reference(env, r->ref_heap); napi_delete_reference(env, r->ref_cb);
    throw_errno(env, EAGAIN, "scan", s->root_path, NULL);
    return NULL;
  }
  return js_undefined(env);
}

// scanClose(handle): closes every fd now, or when an in-flight scanNext completes. Idempotent.
napi_value js_scan_close(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  struct scan *s = get_scan(env, argv[0], true);
  if (!s) return NULL;
  if (s->inflight) s->close_when_idle = true;
  else scan_close_all(s);
  return js_undefined(env);
}

// lookupBatch(dirfd, names, count, records, heap, plan) -> heap bytes used. plan: the xattr plan
// (xattr_plan.h), or null. Extras are packed in heap one after another in record order.
napi_value js_lookup_batch(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  int32_t dirfd;
  int64_t count;
  uint8_t *names, *rec, *heap;
  size_t names_len, rec_len, heap_len;
  struct xattr_plan plan;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_bytes(env, argv[1], &names, &names_len) ||
      !arg_i64(env, argv[2], &count) || !arg_bytes(env, argv[3], &rec, &rec_len) ||
      !arg_bytes(env, argv[4], &heap, &heap_len) || !arg_plan(env, argv[5], &plan))
    return NULL;
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
      if (plan.any && entry_xattrs(&plan, dirfd, name, -1, &r, tmp, &extra, &which) != 0) {
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
  ret = js_number(env, (double)used);
out:
  free(tmp[0].p);
  free(tmp[1].p);
  free(extra.p);
  return ret;
}