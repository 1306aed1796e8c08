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
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"
#include "dirents.h"
#include "syscalls.h"


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
static const struct dirent64_raw *rm_next(struct rm_walk *w, struct rm_level *l) {
  for (;;) {
    const struct dirent64_raw *d = dirents_step(l->saved ? l->saved : w->buf, l->len, &l->pos);
    if (d) return d;
    if (l->saved) { free(l->saved); w->saved_bytes -= l->len; l->saved = NULL; }
    l->len = l->pos = 0;
    if (l->rewind) {
      if (lseek(l->fd, 0, SEEK_SET) < 0) return NULL;
      l->rewind = false;
    }
    long n = dirents_read(l->fd, w->buf, DENTS_CHUNK);
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
    const struct dirent64_raw *d = rm_next(&w, l);
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
napi_value js_remove_tree(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  char *path = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path)) return NULL;
  if (!arg_function(env, argv[2])) { free(path); return NULL; }
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
  return js_undefined(env);
}

// removeTreeSync(dirfd, path)
napi_value js_remove_tree_sync(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t dirfd;
  char *path = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path)) return NULL;
  struct failure f = {0};
  napi_value ret = NULL;
  if (rm_tree(dirfd, path, &f) != 0) napi_throw(env, failure_error(env, &f));
  else ret = js_undefined(env);
  free(path);
  return ret;
}
