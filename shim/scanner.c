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
#include <sys/resource.h>
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

// walk_flags: SCAN_SIZE_ALLOCATED puts st_blocks * 512 in size instead of st_size (the only walk flag
// that shapes a record's stat fields).
static void fill_record(struct scan_record *r, const struct stat *st, uint32_t walk_flags) {
  memset(r, 0, sizeof *r);
  r->ino = st->st_ino;
  r->size = (walk_flags & SCAN_SIZE_ALLOCATED) ? (int64_t)st->st_blocks * 512 : st->st_size;
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
// attribute is asked for, or the entry is examined through an fd (SCAN_INLINE_DATA's files), one
// listxattr first spares the gets of absent ones (most entries have none; through an fd a listxattr
// costs ~0.5 µs here, a getxattr 0.9 µs, 1.2 µs for security.capability, which the LSM hooks look up
// twice).
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
  if (fd >= 0 || k->ntests + (k->has_extra ? 1 : 0) > 1) {
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

// SCAN_INLINE_DATA in two phases, so that a batch's file reads run beside the next batch's walk:
// the walk (in call order, one batch after another) reserves each small file's st_size bytes in the
// heap and notes a job; the jobs are then read on the same pool thread once the next batch's walk
// has been let go (scan_work_execute). A job reads the fd the walk opened the file by (the walk
// stats it and reads its xattrs through that fd: one path lookup per file instead of three), or,
// when the walk holds too many, opens its file relative to a dup of its directory's fd, since the walk
// may close the directory before the job runs.
struct data_job {
  uint32_t rec_index, name_off, data_off, size;
  uint16_t name_len;
  uint16_t dir;         // index into fds (fd < 0)
  int fd;               // the file, opened by the walk; -1: open it by name
};

// Files a batch's jobs keep open at most: an eighth of the fd limit (up to three batches' jobs wait at
// once), at most DATA_JOBS_MAX_HELD; the rest are opened again by name.
#define DATA_JOBS_MAX_HELD 4096

struct data_jobs {
  struct data_job *v;
  size_t n, cap;
  int *fds;             // dups of the directories the jobs open in
  size_t nfds, fds_cap;
  uint64_t last_dir;    // the walk's directory (its level's serial) fds[nfds - 1] duplicates; 0: none
  size_t held;          // jobs with an fd of their own
};

static void data_jobs_reset(struct data_jobs *j) {
  for (size_t i = 0; i < j->nfds; i++) close(j->fds[i]);
  for (size_t i = 0; j->held && i < j->n; i++)
    if (j->v[i].fd >= 0) close(j->v[i].fd);
  j->held = 0;
  j->n = 0;
  j->nfds = 0;
  j->last_dir = 0;
}

static void data_jobs_free(struct data_jobs *j) {
  data_jobs_reset(j);
  free(j->v);
  free(j->fds);
  memset(j, 0, sizeof *j);
}

// Notes a job for the file `name_len` bytes at heap `name_off`: its fd `file_fd` (the job owns it
// from now on, whatever this returns), or -1 to open it in directory `dirfd` (the walk's directory
// number `dir`: an fd number comes back for the next directory once one is closed).
// Returns false (the file then comes without data) when there is no memory or no fd for it.
static bool data_jobs_add(struct data_jobs *j, int dirfd, uint64_t dir, uint32_t rec_index, uint32_t name_off,
                          uint16_t name_len, uint32_t data_off, uint32_t size, int file_fd) {
  if (j->n == j->cap) {
    size_t cap = j->cap ? j->cap * 2 : 256;
    struct data_job *v = realloc(j->v, cap * sizeof *v);
    if (!v) {
      if (file_fd >= 0) close(file_fd);
      return false;
    }
    j->v = v;
    j->cap = cap;
  }
  if (file_fd >= 0) {
    j->v[j->n++] = (struct data_job){rec_index, name_off, data_off, size, name_len, 0, file_fd};
    j->held++;
    return true;
  }
  if (dir != j->last_dir || j->nfds == 0) {
    if (j->nfds == j->fds_cap || j->nfds == UINT16_MAX) {
      if (j->nfds == UINT16_MAX) return false;
      size_t cap = j->fds_cap ? j->fds_cap * 2 : 16;
      int *fds = realloc(j->fds, cap * sizeof *fds);
      if (!fds) return false;
      j->fds = fds;
      j->fds_cap = cap;
    }
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return false;
    j->fds[j->nfds++] = fd;
    j->last_dir = dir;
  }
  j->v[j->n++] = (struct data_job){rec_index, name_off, data_off, size, name_len, (uint16_t)(j->nfds - 1), -1};
  return true;
}

// Reads every job's file into its reserved heap bytes; a file that cannot be opened or holds fewer
// bytes now loses FLAG_DATA (the caller's own read reports that). Closes the dups.
static void data_jobs_run(struct data_jobs *j, uint8_t *rec, uint8_t *heap) {
  char name[NAME_MAX + 1];
  for (size_t i = 0; i < j->n; i++) {
    struct data_job *d = &j->v[i];
    size_t got = 0;
    int fd = d->fd;
    d->fd = -1;
    if (fd < 0) {
      memcpy(name, heap + d->name_off, d->name_len);
      name[d->name_len] = 0;
      fd = openat(j->fds[d->dir], name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd >= 0) {
      while (got < d->size) {
        ssize_t n = read(fd, heap + d->data_off + got, d->size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
      }
      close(fd);
    }
    if (got != d->size) {
      struct scan_record *r = (struct scan_record *)(rec + (size_t)d->rec_index * RECORD_SIZE);
      r->flags &= (uint16_t)~FLAG_DATA;
    }
  }
  data_jobs_reset(j);
}

// ---------------------------------------------------------------------------------------------
// The walk: state (one open fd + its entries per depth) lives in the handle, so a walk can stop at
// any batch boundary and resume exactly there.
//
// SCAN_SHARED: an unordered walk of the whole tree by two walkers at once (one per scanNext call in
// flight, each on its own pool thread), which share out directories through a queue in the handle:
// a walker queues a subdirectory instead of entering it while the queue runs short (or near the
// top), and takes a queued one when its own stack is empty. A big directory (st_size >= SHARED_BIG_DIR)
// is queued as SHARED_SHARDS shards — each shard reads the whole directory but stats and emits only
// the names its hash picks — so one huge flat directory keeps both walkers busy too. Every entry is
// emitted once, in no particular order; an entry's depth counts from the root as usual.
//
// SCAN_SPLIT (with SCAN_SORTED): the sorted pre-order walk by two walkers at once, in segments. A
// walker without work steals from the other walker's shallowest level with names still ahead (every
// shallower level is through, so these are the tail of what the other has left): the second half
// of them, or the one name when only one is left. That tail of the pre-order becomes a new segment,
// which comes after everything the victim's segment emits, and before the segments split off the
// victim earlier (they were later tails) — so the walk is: a segment, then the segments split off
// it from the newest to the oldest, each followed by its own in the same way. A batch
// holds records of one segment; it says which, after which segment a new one comes, and when a
// segment is complete, so the caller can put the segments together into the one sorted walk. The
// walkers' level stacks are shared state here (read by a thief), so their changes take the lock.

#define SCAN_MAGIC 0x6f766c32u
#define SCAN_WALKERS 2
#define SHARED_BIG_DIR (64 * 1024) // ext4: ~2000 entries
#define SHARED_SHARDS 2            // one per walker: each shard reads the whole directory
#define SHARED_EXPAND_DEPTH 2      // always share out the top levels
#define SHARED_QUEUE_LOW 16        // below that many queued directories, share out every one

struct level {
  struct dir_stream dir; // its fd is this level's directory
  char *name;            // this directory's name in its parent (NULL for where the walk started), for paths
  char **sorted;         // SCAN_SORTED: every name of the directory, in byte order
  size_t n, i;
  uint8_t shard, shards; // SCAN_SHARED: emit only names whose hash % shards is shard (shards 0: all)
  bool ready;            // SCAN_SPLIT: sorted names read (a thief may take some)
  uint64_t serial;       // tells this directory from any other the walker opened (SCAN_INLINE_DATA)
};

struct pending {        // the next entry, fully examined but not yet written
  bool valid;
  struct scan_record rec;
  char name[NAME_MAX + 1];
  size_t name_len;
  struct xbuf extra;
  size_t data_len;      // SCAN_INLINE_DATA: bytes of content to reserve and read (0: none)
  int data_fd;          // SCAN_INLINE_DATA: the file, opened by the walk to be read by its job; -1: none
  int child_fd;         // a directory to descend into once this record is written; -1 otherwise
};

struct walker {         // one walk's position: the open directories from where it started down
  struct level *levels;
  size_t depth, cap;    // levels[0] is where the walk started; entries of levels[d] have depth base + d + 1
  uint64_t opened;      // directories pushed so far (level serials)
  uint16_t base;        // SCAN_SHARED: depth of the queued directory the walk started at (root: 0)
  char *base_rel;       // SCAN_SHARED: its path under the root ("" for the root itself)
  struct pending pend;
  struct xbuf tmp[2];   // xattr scratch
  bool busy;            // SCAN_SHARED/SPLIT: a scanNext call drives it (main thread only)
  bool active;          // SCAN_SHARED: holds a queued directory (counted in scan.queue_active)
  bool has_segment;     // SCAN_SPLIT: walking segment `segment` (which follows `seg_after`; -1: the first)
  bool seg_new;         // its first batch is still to be written
  uint32_t segment;
  int64_t seg_after;
  uint32_t seg_stolen;  // segments stolen from this one so far (all of them once it is complete)
};

struct shared_item { char *rel; uint16_t depth; uint8_t shard, shards; };

struct scan;

struct scan_req {       // one scanNext call
  struct scan *s;
  struct walker *w;
  bool used;
  uint64_t ticket;
  napi_async_work work;
  napi_ref ref_self, ref_records, ref_heap, ref_cb;
  uint8_t *rec_ptr, *heap_ptr;
  size_t rec_len, heap_len;
  uint32_t out_count, out_heap;
  bool out_done;
  uint32_t out_segment;  // SCAN_SPLIT
  int64_t out_after;     // -2: not the segment's first batch
  bool out_seg_done;
  uint32_t out_stolen;
  int out_rc;
  struct failure out_fail;
  struct data_jobs jobs; // SCAN_INLINE_DATA reads of this batch
};

struct scan {
  uint32_t magic;
  uint32_t flags;
  struct xattr_plan plan;
  char *root_path;
  struct walker w[SCAN_WALKERS]; // without SCAN_SHARED only w[0]
  struct data_jobs sync_jobs;    // scanNextSync's
  size_t max_held;               // fds a batch's jobs may keep (DATA_JOBS_MAX_HELD)
  struct failure broken;         // a scan error: every later call reports it again (under mu)
  bool is_broken, closed, close_when_idle;
  // async batches: up to two scanNext calls at once (one per slot of the caller's buffers). Without
  // SCAN_SHARED they are filled in call order — the second waits for its turn on the pool thread,
  // not for the main thread to come round, so the walk never pauses between batches; with it, each
  // drives its own walker and they run at the same time.
  struct scan_req reqs[2];
  unsigned inflight;
  uint64_t next_ticket, turn;
  // SCAN_SHARED: the root, the queue of directories to walk (FIFO: big subtrees first), how many
  // walkers hold one, and cancelled (a failure or a close: waiting walkers give up)
  int root_fd;
  struct shared_item *queue;
  size_t qhead, qlen, qcap;
  unsigned queue_active;
  bool cancelled;
  uint32_t next_segment; // SCAN_SPLIT
  unsigned waiters;      // SCAN_SPLIT: walkers waiting for something to steal
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

static void walker_close(struct walker *w) {
  for (size_t i = 0; i < w->depth; i++) level_free(&w->levels[i]);
  w->depth = 0;
  if (w->pend.valid && w->pend.child_fd >= 0) close(w->pend.child_fd);
  if (w->pend.valid && w->pend.data_fd >= 0) close(w->pend.data_fd);
  w->pend.valid = false;
  w->pend.child_fd = -1;
  w->pend.data_fd = -1;
}

static void scan_close_all(struct scan *s) {
  for (int k = 0; k < SCAN_WALKERS; k++) walker_close(&s->w[k]);
  if (s->root_fd >= 0) close(s->root_fd);
  s->root_fd = -1;
  for (size_t i = 0; i < s->qlen; i++) free(s->queue[s->qhead + i].rel);
  s->qhead = s->qlen = 0;
  s->closed = true;
}

static void scan_destroy(struct scan *s) {
  scan_close_all(s);
  for (int k = 0; k < SCAN_WALKERS; k++) {
    struct walker *w = &s->w[k];
    free(w->levels);
    free(w->base_rel);
    free(w->pend.extra.p);
    free(w->tmp[0].p);
    free(w->tmp[1].p);
  }
  free(s->queue);
  free(s->root_path);
  data_jobs_free(&s->sync_jobs);
  data_jobs_free(&s->reqs[0].jobs);
  data_jobs_free(&s->reqs[1].jobs);
  failure_clear(&s->broken);
  failure_clear(&s->reqs[0].out_fail);
  failure_clear(&s->reqs[1].out_fail);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  s->magic = 0;
  free(s);
}

static void scan_finalize(napi_env env, void *data, void *hint) { scan_destroy(data); }

// `a/b/c` for the walker's current directory plus `name` (NULL: the directory itself), starting
// with `prefix` (NULL or "": relative to the root, no leading slash).
static char *walker_path_upto(const struct walker *w, size_t upto, const char *prefix, const char *name) {
  const char *base = w->base_rel ? w->base_rel : "";
  size_t len = (prefix ? strlen(prefix) : 0) + strlen(base) + (name ? strlen(name) : 0) + 3;
  for (size_t i = 1; i < upto; i++) len += strlen(w->levels[i].name) + 1;
  char *p = malloc(len);
  if (!p) return NULL;
  size_t at = 0;
  const char *parts_first[2] = {prefix, base};
  for (int k = 0; k < 2; k++) {
    const char *part = parts_first[k];
    if (!part || !*part) continue;
    if (at) p[at++] = '/';
    size_t n = strlen(part);
    memcpy(p + at, part, n);
    at += n;
  }
  for (size_t i = 1; i <= upto; i++) {
    const char *part = i < upto ? w->levels[i].name : name;
    if (!part) continue;
    if (at) p[at++] = '/';
    size_t n = strlen(part);
    memcpy(p + at, part, n);
    at += n;
  }
  p[at] = 0;
  return p;
}

static char *walker_path(const struct walker *w, const char *prefix, const char *name) {
  return walker_path_upto(w, w->depth, prefix, name);
}

// The path of entry `name` (NULL: the current directory) for error messages.
static char *scan_path(struct scan *s, struct walker *w, const char *name) {
  char *p = walker_path(w, s->root_path, name);
  if (p && !*p) { free(p); p = strdup("/"); } // the root "/" itself (its path lost its slash)
  return p;
}

static int fail(struct scan *s, struct walker *w, struct failure *f, int err, const char *syscall_name, const char *name) {
  f->err = err;
  f->syscall = syscall_name;
  f->path = scan_path(s, w, name);
  return -1;
}

// Remembers a failure for every later call; a shared scan's other walker stops waiting.
static void scan_break(struct scan *s, int err, const char *syscall_name, char *path) {
  pthread_mutex_lock(&s->mu);
  if (!s->is_broken) {
    s->is_broken = true;
    s->broken.err = err;
    s->broken.syscall = syscall_name;
    s->broken.path = path;
    path = NULL;
  }
  s->cancelled = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  free(path);
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

// The next name of a directory, or NULL at its end (errno 0) or on error (errno set); *type: its
// d_type, DT_UNKNOWN where it is not known.
static const char *level_next(struct scan *s, struct level *l, unsigned char *type) {
  *type = DT_UNKNOWN;
  if (s->flags & SCAN_SORTED) {
    bool split = s->flags & SCAN_SPLIT;
    if (!l->sorted) {
      if (level_read_sorted(l) != 0) return NULL;
      if (split) { // something to steal now
        pthread_mutex_lock(&s->mu);
        l->ready = true;
        if (s->waiters) pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
      }
    }
    errno = 0;
    const char *name;
    if (!split) {
      name = l->i < l->n ? l->sorted[l->i++] : NULL;
    } else {
      pthread_mutex_lock(&s->mu); // a thief may have cut n
      name = l->i < l->n ? l->sorted[l->i++] : NULL;
      pthread_mutex_unlock(&s->mu);
    }
    // the byte before a name is its d_type: in the getdents64 buffer (struct dirent64_raw), and in a
    // stolen block, which keeps that layout (split_steal)
    if (name) *type = (unsigned char)name[-1];
    return name;
  }
  const struct dirent64_raw *d = dir_stream_next(&l->dir);
  if (!d) return NULL;
  *type = d->d_type;
  return d->d_name;
}

// FNV-1a: which shard of a big shared directory owns an entry (any stable spread of names will do).
static uint32_t shard_of(const char *name, uint32_t count) {
  uint32_t h = 2166136261u;
  for (const unsigned char *c = (const unsigned char *)name; *c; c++) h = (h ^ *c) * 16777619u;
  return h % count;
}

static int walker_push(struct walker *w, int fd, const char *name) {
  if (w->depth == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 16;
    struct level *p = realloc(w->levels, cap * sizeof *p);
    if (!p) { errno = ENOMEM; return -1; }
    w->levels = p;
    w->cap = cap;
  }
  struct level *l = &w->levels[w->depth];
  memset(l, 0, sizeof *l);
  l->dir.fd = fd;
  l->serial = ++w->opened;
  if (name && !(l->name = strdup(name))) { errno = ENOMEM; return -1; }
  w->depth++;
  return 0;
}

// SCAN_SHARED: queues subdirectory `name` (of `size` bytes, at `depth`) of the walker's current
// directory when it is big, near the top or the queue runs short. Returns 1 queued, 0 (enter it
// yourself), -1 (ENOMEM).
static int shared_offer(struct scan *s, struct walker *w, const char *name, off_t size, uint16_t depth) {
  uint8_t shards = size >= SHARED_BIG_DIR ? SHARED_SHARDS : 1;
  pthread_mutex_lock(&s->mu);
  bool share = shards > 1 || depth <= SHARED_EXPAND_DEPTH || s->qlen < SHARED_QUEUE_LOW;
  pthread_mutex_unlock(&s->mu);
  if (!share) return 0;
  char *rels[SHARED_SHARDS] = {0};
  for (uint8_t k = 0; k < shards; k++) {
    if (!(rels[k] = walker_path(w, NULL, name))) {
      for (uint8_t j = 0; j < k; j++) free(rels[j]);
      errno = ENOMEM;
      return -1;
    }
  }
  pthread_mutex_lock(&s->mu);
  if (s->qhead + s->qlen + shards > s->qcap) {
    if (s->qhead) { // slide the live part down before growing
      memmove(s->queue, s->queue + s->qhead, s->qlen * sizeof *s->queue);
      s->qhead = 0;
    }
    if (s->qlen + shards > s->qcap) {
      size_t cap = s->qcap ? s->qcap * 2 : 64;
      struct shared_item *q = realloc(s->queue, cap * sizeof *q);
      if (!q) {
        pthread_mutex_unlock(&s->mu);
        for (uint8_t k = 0; k < shards; k++) free(rels[k]);
        errno = ENOMEM;
        return -1;
      }
      s->queue = q;
      s->qcap = cap;
    }
  }
  for (uint8_t k = 0; k < shards; k++)
    s->queue[s->qhead + s->qlen++] = (struct shared_item){rels[k], depth, k, shards > 1 ? shards : 0};
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 1;
}

// SCAN_SHARED: the walker's stack is empty; gives up its directory and takes a queued one. Returns 1
// (walking it now), 3 (it vanished: call again), 0 (the whole tree is done, or the scan cancelled),
// 2 (nothing queued yet but another walker may still queue some, and may_block is false), -1 (f set).
static int shared_take(struct scan *s, struct walker *w, struct failure *f, bool may_block) {
  struct shared_item item;
  pthread_mutex_lock(&s->mu);
  if (w->active) {
    w->active = false;
    if (--s->queue_active == 0 && s->qlen == 0) pthread_cond_broadcast(&s->cv);
  }
  for (;;) {
    if (s->cancelled || (s->qlen == 0 && s->queue_active == 0)) { pthread_mutex_unlock(&s->mu); return 0; }
    if (s->qlen) break;
    if (!may_block) { pthread_mutex_unlock(&s->mu); return 2; }
    pthread_cond_wait(&s->cv, &s->mu);
  }
  item = s->queue[s->qhead++];
  if (--s->qlen == 0) s->qhead = 0;
  w->active = true;
  s->queue_active++;
  pthread_mutex_unlock(&s->mu);
  free(w->base_rel);
  w->base_rel = item.rel;
  w->base = item.depth;
  int fd = openat(s->root_fd, *item.rel ? item.rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return 3; // vanished since it was listed
    return fail(s, w, f, errno, "openat", NULL);
  }
  if (walker_push(w, fd, NULL) != 0) { close(fd); return fail(s, w, f, ENOMEM, "scan", NULL); }
  w->levels[0].shard = item.shard;
  w->levels[0].shards = item.shards;
  return 1;
}

// SCAN_SPLIT: the walker's segment is done; steals the tail of the other walker's remaining walk as a
// new segment. Returns 1 (walking it now), 0 (the whole walk is done, or the scan cancelled), 2
// (nothing to steal yet, and may_block is false), -1 (f set).
static int split_steal(struct scan *s, struct walker *w, struct failure *f, bool may_block) {
  struct walker *v = w == &s->w[0] ? &s->w[1] : &s->w[0];
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (s->cancelled || !v->has_segment) { pthread_mutex_unlock(&s->mu); return 0; }
    for (size_t d = 0; d < v->depth; d++) {
      struct level *l = &v->levels[d];
      if (!l->ready) break;           // not read yet (the deepest level): nothing known below
      if (l->i == l->n) continue;     // through: the tail is deeper
      size_t mid = l->i + (l->n - l->i) / 2, cnt = l->n - mid, bytes = 0;
      for (size_t k = mid; k < l->n; k++) bytes += strlen(l->sorted[k]) + 2; // d_type, name, NUL
      int fd = fcntl(l->dir.fd, F_DUPFD_CLOEXEC, 0);
      int err = fd < 0 ? errno : 0;
      char *block = malloc(bytes), **names = malloc(cnt * sizeof *names), *rel = walker_path_upto(v, d + 1, NULL, NULL);
      if (!err && (!block || !names || !rel)) err = ENOMEM;
      if (!err && walker_push(w, fd, NULL) != 0) err = ENOMEM;
      if (err) {
        pthread_mutex_unlock(&s->mu);
        if (fd >= 0) close(fd);
        free(block);
        free(names);
        free(rel);
        return fail(s, w, f, err, "scan", NULL);
      }
      char *at = block;
      for (size_t k = 0; k < cnt; k++) {
        // the byte before a name is its d_type, as in the getdents buffer (SCAN_STAT_DIRS_ONLY reads it)
        size_t n = strlen(l->sorted[mid + k]) + 2;
        memcpy(at, l->sorted[mid + k] - 1, n);
        names[k] = at + 1;
        at += n;
      }
      l->n = mid; // the victim stops before them
      v->seg_stolen++;
      struct level *t = &w->levels[0];
      t->dir.buf = (uint8_t *)block; // freed with the level
      t->dir.cap = t->dir.len = bytes;
      t->sorted = names;
      t->n = cnt;
      t->ready = true;
      free(w->base_rel);
      w->base_rel = rel;
      w->base = (uint16_t)(v->base + d);
      w->has_segment = true;
      w->seg_new = true;
      w->segment = s->next_segment++;
      w->seg_after = v->segment;
      w->seg_stolen = 0;
      pthread_mutex_unlock(&s->mu);
      return 1;
    }
    if (!may_block) { pthread_mutex_unlock(&s->mu); return 2; }
    s->waiters++;
    pthread_cond_wait(&s->cv, &s->mu);
    s->waiters--;
  }
}

// Examines the next entry of the walk into w->pend. Returns 1 ready, 0 walk finished, -1 failure,
// 2 (SCAN_SHARED/SPLIT, !may_block) nothing to walk right now, 4 (SCAN_SPLIT) the segment is complete.
// hold_fd (SCAN_INLINE_DATA): a small regular file may keep the fd it was examined by, for its job.
static int scan_prepare(struct scan *s, struct walker *w, struct failure *f, bool may_block, bool hold_fd) {
  struct pending *p = &w->pend;
  bool shared = s->flags & SCAN_SHARED, split = s->flags & SCAN_SPLIT;
  for (;;) {
    if (w->depth == 0) {
      if (split) {
        if (w->has_segment) {
          pthread_mutex_lock(&s->mu);
          w->has_segment = false;
          if (s->waiters) pthread_cond_broadcast(&s->cv);
          pthread_mutex_unlock(&s->mu);
          return 4;
        }
        int r = split_steal(s, w, f, may_block);
        if (r == 1) continue;
        return r;
      }
      if (!shared) return 0;
      int r = shared_take(s, w, f, may_block);
      if (r == 1 || r == 3) continue;
      return r;
    }
    struct level *l = &w->levels[w->depth - 1];
    unsigned char dtype;
    const char *name = level_next(s, l, &dtype);
    if (!name) {
      if (errno) return fail(s, w, f, errno, "getdents64", NULL);
      if (split) pthread_mutex_lock(&s->mu);
      level_free(l);
      w->depth--;
      if (split) pthread_mutex_unlock(&s->mu);
      continue;
    }
    if (l->shards && shard_of(name, l->shards) != l->shard) continue;
    struct stat st;
    uint32_t inline_log2 = SCAN_INLINE_DATA_LOG2(s->flags);
    // SCAN_INLINE_DATA: a regular file (by its d_type) is opened first and examined through the fd —
    // fstat and fgetxattr need no path lookup — and its job reads that fd if it is small enough.
    // O_NOFOLLOW: a symlink put there meanwhile fails (ELOOP) and takes the fstatat path, as does any
    // other failure to open; O_NONBLOCK: a FIFO put there meanwhile does not block the open.
    int file_fd = -1;
    if (inline_log2 && dtype == DT_REG) {
      file_fd = openat(l->dir.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      if (file_fd >= 0 && (fstat(file_fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(file_fd); // (replaced by a directory meanwhile: examined by name as any other)
        file_fd = -1;
      }
    }
    if (file_fd >= 0) {
      // examined through its fd above
    } else if ((s->flags & SCAN_STAT_DIRS_ONLY) && (dtype == DT_REG || dtype == DT_LNK || dtype == DT_FIFO)) {
      memset(&st, 0, sizeof st);
      st.st_mode = DTTOIF(dtype);
    } else if (fstatat(l->dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue; // vanished since getdents
      return fail(s, w, f, errno, "fstatat", name);
    }
    fill_record(&p->rec, &st, s->flags);
    size_t depth = w->base + w->depth;
    if (depth > UINT16_MAX) {
      if (file_fd >= 0) close(file_fd);
      return fail(s, w, f, EOVERFLOW, "scan", name);
    }
    p->rec.depth = (uint16_t)depth;
    p->name_len = strlen(name);
    memcpy(p->name, name, p->name_len + 1);
    p->child_fd = -1;
    if (S_ISDIR(st.st_mode) && !(s->flags & SCAN_NO_RECURSE)) {
      int queued = shared ? shared_offer(s, w, name, st.st_size, (uint16_t)depth) : 0;
      if (queued < 0) return fail(s, w, f, errno, "scan", name);
      if (!queued) {
        p->child_fd = openat(l->dir.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (p->child_fd < 0) {
          if (errno == ENOENT) continue;
          return fail(s, w, f, errno, "openat", name);
        }
      }
    }
    const char *which;
    p->extra.len = 0;
    if (s->plan.any && entry_xattrs(&s->plan, l->dir.fd, name, p->child_fd >= 0 ? p->child_fd : file_fd, &p->rec, w->tmp, &p->extra, &which) != 0) {
      int err = errno;
      if (p->child_fd >= 0) close(p->child_fd);
      if (file_fd >= 0) close(file_fd);
      p->child_fd = -1;
      if (err == ENOENT) continue;
      return fail(s, w, f, err, which, name);
    }
    p->data_len = 0;
    p->data_fd = -1;
    if (inline_log2 && S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size <= (1ull << inline_log2)) {
      p->data_len = (size_t)st.st_size;
      if (hold_fd) {
        p->data_fd = file_fd;
        file_fd = -1;
      }
    }
    if (file_fd >= 0) close(file_fd);
    p->valid = true;
    return 1;
  }
}

// Fills one batch from walker w. Returns 0 (out_* set) or -1 (f set). Runs on any thread; touches no
// JS. SCAN_INLINE_DATA: file contents are only reserved here; `jobs` says what data_jobs_run must
// read. may_block (SCAN_SHARED): an empty batch may wait for the other walker to queue directories.
// SCAN_SPLIT: *seg_done says the batch ends the walker's segment (w->segment, new if w->seg_new).
static int scan_fill(struct scan *s, struct walker *w, uint8_t *rec, size_t rec_len, uint8_t *heap, size_t heap_len,
                     uint32_t *count_out, uint32_t *heap_out, bool *done_out, struct failure *f, struct data_jobs *jobs,
                     bool may_block, bool *seg_done) {
  size_t count = 0, used = 0, max = rec_len / RECORD_SIZE;
  *done_out = false;
  *seg_done = false;
  data_jobs_reset(jobs);
  pthread_mutex_lock(&s->mu);
  if (s->is_broken) {
    f->err = s->broken.err;
    f->syscall = s->broken.syscall;
    f->path = s->broken.path ? strdup(s->broken.path) : NULL;
    pthread_mutex_unlock(&s->mu);
    return -1;
  }
  pthread_mutex_unlock(&s->mu);
  for (;;) {
    if (!w->pend.valid) {
      int r = scan_prepare(s, w, f, may_block && count == 0, jobs->held < s->max_held);
      if (r == 0) { *done_out = true; break; }
      if (r == 2) break;
      if (r == 4) { *seg_done = true; break; }
      if (r < 0) {
        // Remember it; report it now if nothing was written, else with the next call.
        scan_break(s, f->err, f->syscall, f->path ? strdup(f->path) : NULL);
        if (count == 0) return -1;
        failure_clear(f);
        break;
      }
    }
    struct pending *p = &w->pend;
    size_t need = p->name_len + p->extra.len + p->data_len;
    if (count == 0 && max > 0 && heap_len < need && heap_len >= need - p->data_len) {
      need -= p->data_len; // its contents alone overflow the heap: it comes without them
      p->data_len = 0;
      if (p->data_fd >= 0) close(p->data_fd);
      p->data_fd = -1;
    }
    if (count >= max || heap_len - used < need) {
      if (count > 0) break;
      f->err = ENOBUFS;
      f->syscall = "scan";
      f->path = scan_path(s, w, p->name);
      return -1;
    }
    p->rec.name_off = (uint32_t)used;
    p->rec.name_len = (uint16_t)p->name_len;
    memcpy(rec + count * RECORD_SIZE, &p->rec, RECORD_SIZE);
    memcpy(heap + used, p->name, p->name_len);
    if (p->extra.len) memcpy(heap + used + p->name_len, p->extra.p, p->extra.len);
    if (p->data_len) {
      // the entry's directory is still the top of the walker's stack: nothing was pushed since its prepare
      const struct level *dir = &w->levels[w->depth - 1];
      size_t data_off = used + p->name_len + p->extra.len;
      int data_fd = p->data_fd;
      p->data_fd = -1; // the job's now
      if (data_jobs_add(jobs, dir->dir.fd, dir->serial, (uint32_t)count, (uint32_t)used, (uint16_t)p->name_len, (uint32_t)data_off, (uint32_t)p->data_len, data_fd))
        ((struct scan_record *)(rec + count * RECORD_SIZE))->flags |= FLAG_DATA;
      else
        need -= p->data_len; // no job: no data, no room kept for it
    }
    used += need;
    count++;
    p->valid = false;
    if (p->child_fd >= 0) {
      int fd = p->child_fd;
      p->child_fd = -1;
      bool split = s->flags & SCAN_SPLIT; // a thief reads the stack
      if (split) pthread_mutex_lock(&s->mu);
      int pushed = walker_push(w, fd, p->name);
      if (split) pthread_mutex_unlock(&s->mu);
      if (pushed != 0) {
        close(fd);
        scan_break(s, errno, "scan", scan_path(s, w, p->name));
        break; // the record is written; the failure comes with the next call
      }
    }
  }
  *count_out = (uint32_t)count;
  *heap_out = (uint32_t)used;
  return 0;
}
// scanOpen(dirfd, path, flags, plan) -> handle. flags: SCAN_SORTED, SCAN_NO_RECURSE, SCAN_SHARED (with
// neither), SCAN_SPLIT (with SCAN_SORTED only), SCAN_INLINE_DATA_LOG2; plan: the xattr plan
// (xattr_plan.h), or null.
napi_value js_scan_open(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int32_t dirfd;
  int64_t flags;
  char *path = NULL;
  struct xattr_plan plan;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) || !arg_i64(env, argv[2], &flags) ||
      !arg_plan(env, argv[3], &plan))
    goto fail_out;
  if (((flags & SCAN_SHARED) && (flags & (SCAN_SORTED | SCAN_NO_RECURSE | SCAN_SPLIT))) ||
      ((flags & SCAN_SPLIT) && (!(flags & SCAN_SORTED) || (flags & SCAN_NO_RECURSE)))) {
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
  s->plan = plan;
  s->root_path = path;
  s->root_fd = -1;
  for (int k = 0; k < SCAN_WALKERS; k++) s->w[k].pend.child_fd = s->w[k].pend.data_fd = -1;
  struct rlimit nofile;
  s->max_held = getrlimit(RLIMIT_NOFILE, &nofile) != 0 ? 0
              : nofile.rlim_cur == RLIM_INFINITY || nofile.rlim_cur / 8 > DATA_JOBS_MAX_HELD ? DATA_JOBS_MAX_HELD
              : (size_t)(nofile.rlim_cur / 8);
  if (flags & SCAN_SHARED) {
    // the root is the queue's first directory (in shards when big), taken by whichever walker comes first
    struct stat st;
    s->root_fd = fd;
    int err = fstat(fd, &st) != 0 ? errno : 0;
    uint8_t shards = !err && st.st_size >= SHARED_BIG_DIR ? SHARED_SHARDS : 1;
    if (!err && !(s->queue = calloc(SHARED_SHARDS, sizeof *s->queue))) err = ENOMEM;
    for (uint8_t k = 0; !err && k < shards; k++) {
      if (!(s->queue[k].rel = strdup(""))) { err = ENOMEM; break; }
      s->queue[k].shard = k;
      s->queue[k].shards = shards > 1 ? shards : 0;
      s->qlen++;
    }
    s->qcap = SHARED_SHARDS;
    if (err) { scan_destroy(s); throw_errno(env, err, "scanOpen", NULL, NULL); return NULL; }
  } else if (walker_push(&s->w[0], fd, NULL) != 0) {
    close(fd);
    scan_destroy(s);
    throw_errno(env, ENOMEM, "scanOpen", NULL, NULL);
    return NULL;
  }
  if (flags & SCAN_SPLIT) { // the first walker starts with the whole walk as segment 0
    s->w[0].has_segment = s->w[0].seg_new = true;
    s->w[0].seg_after = -1;
    s->next_segment = 1;
  }
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

// {count, heapUsed, done}; SCAN_SPLIT adds segment, segmentDone, on a segment's first batch after, and
// on its last one stolen (how many segments were taken from it: each names it as `after`).
static napi_value batch_object(napi_env env, struct scan *s, uint32_t count, uint32_t heap_used, bool done,
                               uint32_t segment, int64_t after, bool seg_done, uint32_t stolen) {
  napi_value o, b;
  napi_create_object(env, &o);
  set_num_prop(env, o, "count", count);
  set_num_prop(env, o, "heapUsed", heap_used);
  napi_get_boolean(env, done, &b);
  napi_set_named_property(env, o, "done", b);
  if (s->flags & SCAN_SPLIT) {
    set_num_prop(env, o, "segment", segment);
    if (after >= -1) set_num_prop(env, o, "after", (double)after);
    napi_get_boolean(env, seg_done, &b);
    napi_set_named_property(env, o, "segmentDone", b);
    if (seg_done) set_num_prop(env, o, "stolen", stolen);
  }
  return o;
}

// A split scan's segment facts for the batch just filled by w (read under the lock: a thief counts).
static void batch_segment(struct scan *s, struct walker *w, uint32_t *segment, int64_t *after, uint32_t *stolen) {
  pthread_mutex_lock(&s->mu);
  *segment = w->segment;
  *after = w->seg_new ? w->seg_after : -2;
  *stolen = w->seg_stolen;
  w->seg_new = false;
  pthread_mutex_unlock(&s->mu);
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
  // SCAN_SHARED/SPLIT: the walker holding work goes on; the main thread never waits for the other
  struct walker *w = s->w[1].active || s->w[1].has_segment ? &s->w[1] : &s->w[0];
  bool seg_done;
  if (scan_fill(s, w, rec, rec_len, heap, heap_len, &count, &used, &done, &f, &s->sync_jobs, false, &seg_done) != 0) {
    napi_throw(env, failure_error(env, &f));
    return NULL;
  }
  data_jobs_run(&s->sync_jobs, rec, heap);
  uint32_t segment, stolen;
  int64_t after;
  batch_segment(s, w, &segment, &after, &stolen);
  return batch_object(env, s, count, used, done, segment, after, seg_done, stolen);
}

static void scan_work_execute(napi_env env, void *data) {
  struct scan_req *r = data;
  struct scan *s = r->s;
  bool own = s->flags & (SCAN_SHARED | SCAN_SPLIT); // walkers of their own: no turns
  pthread_mutex_lock(&s->mu);
  while (!own && s->turn != r->ticket) pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  r->out_rc = scan_fill(s, r->w, r->rec_ptr, r->rec_len, r->heap_ptr, r->heap_len, &r->out_count, &r->out_heap,
                        &r->out_done, &r->out_fail, &r->jobs, own, &r->out_seg_done);
  if (r->out_rc == 0) batch_segment(s, r->w, &r->out_segment, &r->out_after, &r->out_stolen);
  pthread_mutex_lock(&s->mu);
  s->turn++;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  // the next batch's walk goes on (another pool thread) while this one's files are read
  if (r->out_rc == 0) data_jobs_run(&r->jobs, r->rec_ptr, r->heap_ptr);
  else data_jobs_reset(&r->jobs);
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
    argv2[1] = batch_object(env, s, r->out_count, r->out_heap, r->out_done, r->out_segment, r->out_after, r->out_seg_done, r->out_stolen);
  }
  napi_delete_async_work(env, r->work);
  napi_delete_reference(env, r->ref_cb);
  napi_delete_reference(env, r->ref_records);
  napi_delete_reference(env, r->ref_heap);
  napi_delete_reference(env, r->ref_self);
  r->work = NULL;
  r->used = false;
  r->w->busy = false;
  s->inflight--;
  if (s->close_when_idle && s->inflight == 0) scan_close_all(s);
  napi_get_global(env, &global);
  napi_value ignored;
  napi_call_function(env, global, cb, 2, argv2, &ignored); // an exception propagates as uncaught
  (void)self;
}

// scanNext(handle, records, heap, callback): the next batch, filled on the libuv pool. A second call
// may come before the first one's callback (into the other buffer): it continues where the first
// stops, and its callback comes after the first's. A third is EBUSY. SCAN_SHARED: the two calls
// drive one walker each, at the same time; their callbacks come in any order, and each call's batch
// says done once the whole tree is.
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
  r->w = &s->w[0];
  if (s->flags & (SCAN_SHARED | SCAN_SPLIT)) r->w = s->w[0].busy ? &s->w[1] : &s->w[0];
  r->w->busy = true;
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
    r->w->busy = false;
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
  if (s->inflight) {
    s->close_when_idle = true;
    pthread_mutex_lock(&s->mu); // a shared walker waiting for the queue gives up
    s->cancelled = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  } else {
    scan_close_all(s);
  }
  return js_undefined(env);
}

// lookupBatch(dirfd, names, count, records, heap, plan, walkFlags) -> heap bytes used. plan: the xattr
// plan (xattr_plan.h), or null; walkFlags: SCAN_SIZE_ALLOCATED or 0 (or absent). Extras are packed in heap one after
// another in record order.
napi_value js_lookup_batch(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  int32_t dirfd;
  int64_t count, walk_flags;
  uint8_t *names, *rec, *heap;
  size_t names_len, rec_len, heap_len;
  struct xattr_plan plan;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_bytes(env, argv[1], &names, &names_len) ||
      !arg_i64(env, argv[2], &count) || !arg_bytes(env, argv[3], &rec, &rec_len) ||
      !arg_bytes(env, argv[4], &heap, &heap_len) || !arg_plan(env, argv[5], &plan))
    return NULL;
  walk_flags = 0;
  if (!is_nullish(env, argv[6]) && !arg_i64(env, argv[6], &walk_flags)) return NULL;
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
      fill_record(&r, &st, (uint32_t)walk_flags);
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