// Batched file creates for applyDiff (src/apply/file-batches.ts): a batch is a packed run of
// "create this small file" records (struct batch_op, below) that one loop turns into syscalls
// (openat2, write, fchown, fchmod, futimens, close), in order, stopping at the first failure. Every
// decision (which entries, names, modes, owners, flags, order) is made in TypeScript; this only runs
// the loop, either on the calling thread (batchRunSync) or on the libuv pool (a runner: a FIFO of
// batches drained by one pool thread at a time, so batches run in the order they were submitted).
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"
#include "syscalls.h"

#define BATCH_OP_FILE 1
#define BATCH_CHOWN 1
#define BATCH_CHMOD 2

// One record; the name's bytes (no NUL) follow it, then the file's bytes; the next record starts at
// the next multiple of 8. Little-endian, host order (records.h asserts little-endian).
struct batch_op {
  uint32_t kind;        // BATCH_OP_FILE
  int32_t dirfd;
  uint32_t open_flags;
  uint32_t create_mode;
  uint32_t resolve;
  uint32_t flags;       // BATCH_CHOWN | BATCH_CHMOD
  uint32_t chmod_mode;
  uint32_t uid;
  uint32_t gid;
  uint32_t atime_nsec;
  int64_t atime_sec;
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  uint32_t name_len;
  uint32_t data_len;
  uint32_t reserved;
};
#define BATCH_OP_SIZE 72
_Static_assert(sizeof(struct batch_op) == BATCH_OP_SIZE, "batch op size");
_Static_assert(offsetof(struct batch_op, dirfd) == 4, "dirfd");
_Static_assert(offsetof(struct batch_op, open_flags) == 8, "openFlags");
_Static_assert(offsetof(struct batch_op, create_mode) == 12, "createMode");
_Static_assert(offsetof(struct batch_op, resolve) == 16, "resolve");
_Static_assert(offsetof(struct batch_op, flags) == 20, "flags");
_Static_assert(offsetof(struct batch_op, chmod_mode) == 24, "chmodMode");
_Static_assert(offsetof(struct batch_op, uid) == 28, "uid");
_Static_assert(offsetof(struct batch_op, gid) == 32, "gid");
_Static_assert(offsetof(struct batch_op, atime_nsec) == 36, "atimeNsec");
_Static_assert(offsetof(struct batch_op, atime_sec) == 40, "atimeSec");
_Static_assert(offsetof(struct batch_op, mtime_sec) == 48, "mtimeSec");
_Static_assert(offsetof(struct batch_op, mtime_nsec) == 56, "mtimeNsec");
_Static_assert(offsetof(struct batch_op, name_len) == 60, "nameLen");
_Static_assert(offsetof(struct batch_op, data_len) == 64, "dataLen");

// A failed op: which one (counted from the start of the run) and what the system said.
struct batch_failure {
  struct failure f;
  uint32_t index;
};

static int op_fail(struct batch_failure *bf, uint32_t index, int err, const char *syscall_name, const char *path) {
  bf->f.err = err;
  bf->f.syscall = syscall_name;
  bf->f.path = path ? strdup(path) : NULL;
  bf->index = index;
  return -1;
}

// Runs the records in buf[0, len); 0, or -1 with *bf filled (the failed op's fd is closed).
static int run_ops(const uint8_t *buf, size_t len, struct batch_failure *bf) {
  char name[4096];
  size_t off = 0;
  for (uint32_t i = 0; off < len; i++) {
    const struct batch_op *op = (const struct batch_op *)(buf + off);
    if (len - off < BATCH_OP_SIZE || op->kind != BATCH_OP_FILE ||
        (uint64_t)op->name_len + op->data_len > len - off - BATCH_OP_SIZE)
      return op_fail(bf, i, EINVAL, "applyBatch", NULL);
    if (op->name_len >= sizeof name) return op_fail(bf, i, ENAMETOOLONG, "openat2", NULL);
    const uint8_t *p = buf + off + BATCH_OP_SIZE;
    memcpy(name, p, op->name_len);
    name[op->name_len] = 0;
    struct shim_open_how how = {op->open_flags, op->create_mode, op->resolve};
    int fd = (int)syscall(SYS_openat2, op->dirfd, name, &how, sizeof how);
    if (fd < 0) return op_fail(bf, i, errno, "openat2", name);
    const uint8_t *data = p + op->name_len;
    size_t left = op->data_len;
    const char *failed = NULL;
    while (left > 0) {
      ssize_t n = write(fd, data, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        failed = "write";
        break;
      }
      data += n;
      left -= (size_t)n;
    }
    if (!failed && (op->flags & BATCH_CHOWN) && fchown(fd, op->uid, op->gid) != 0) failed = "fchown";
    if (!failed && (op->flags & BATCH_CHMOD) && fchmod(fd, op->chmod_mode) != 0) failed = "fchmod";
    if (!failed) {
      struct timespec ts[2] = {{(time_t)op->atime_sec, (long)op->atime_nsec}, {(time_t)op->mtime_sec, (long)op->mtime_nsec}};
      if (futimens(fd, ts) != 0) failed = "futime";
    }
    if (failed) {
      int err = errno;
      close(fd);
      return op_fail(bf, i, err, failed, NULL);
    }
    if (close(fd) != 0) return op_fail(bf, i, errno, "close", NULL);
    off += (BATCH_OP_SIZE + (size_t)op->name_len + op->data_len + 7) & ~(size_t)7;
  }
  return 0;
}

static napi_value failure_value(napi_env env, struct batch_failure *bf, double seq) {
  uint32_t index = bf->index;
  napi_value e = failure_error(env, &bf->f);
  set_num_prop(env, e, "index", index);
  if (seq > 0) set_num_prop(env, e, "seq", seq);
  return e;
}

// batchRunSync(buf, start, end) -> null | Error with .index (op index counted from `start`)
napi_value js_batch_run_sync(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  uint8_t *data;
  size_t len;
  int64_t start, end;
  if (!arg_bytes(env, argv[0], &data, &len) || !arg_i64(env, argv[1], &start) || !arg_i64(env, argv[2], &end)) return NULL;
  if (start < 0 || end < start || (uint64_t)end > len || (start & 7) != 0 || ((uintptr_t)data & 7) != 0) {
    throw_errno(env, EINVAL, "applyBatch", NULL, NULL);
    return NULL;
  }
  struct batch_failure bf = {0};
  if (run_ops(data + start, (size_t)(end - start), &bf) == 0) {
    napi_value n;
    napi_get_null(env, &n);
    return n;
  }
  return failure_value(env, &bf, 0);
}

// ---- the runner: batches on the libuv pool, in submission order ----------------------------------

struct batch_job {
  struct batch_job *next;
  napi_ref buf_ref; // keeps the caller's buffer alive until the job is done
  const uint8_t *data;
  size_t len;
  double seq;
};

struct batch_runner {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct batch_job *head, *tail; // queued
  struct batch_job *done;        // finished: their refs are released on the main thread
  double submitted, processed;   // sequence numbers (1, 2, ...)
  bool draining;                 // a pool thread owns the queue
  bool failed;                   // later jobs are skipped until the failure is collected
  struct batch_failure failure;
  double failed_seq;
};

struct drain_work {
  napi_async_work work;
  napi_ref runner_ref;
  struct batch_runner *r;
};

static void release_done(napi_env env, struct batch_runner *r) {
  pthread_mutex_lock(&r->lock);
  struct batch_job *j = r->done;
  r->done = NULL;
  pthread_mutex_unlock(&r->lock);
  while (j) {
    struct batch_job *next = j->next;
    napi_delete_reference(env, j->buf_ref);
    free(j);
    j = next;
  }
}

static void drain_execute(napi_env env, void *data) {
  struct batch_runner *r = ((struct drain_work *)data)->r;
  pthread_mutex_lock(&r->lock);
  while (r->head) {
    struct batch_job *j = r->head;
    r->head = j->next;
    if (!r->head) r->tail = NULL;
    bool skip = r->failed;
    pthread_mutex_unlock(&r->lock);
    struct batch_failure bf = {0};
    int rc = skip ? 0 : run_ops(j->data, j->len, &bf);
    pthread_mutex_lock(&r->lock);
    if (rc != 0) {
      r->failed = true;
      r->failure = bf;
      r->failed_seq = j->seq;
    }
    r->processed = j->seq;
    j->next = r->done;
    r->done = j;
    pthread_cond_broadcast(&r->cond);
  }
  r->draining = false;
  pthread_cond_broadcast(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

static void drain_complete(napi_env env, napi_status status, void *data) {
  struct drain_work *w = data;
  release_done(env, w->r);
  napi_delete_async_work(env, w->work);
  napi_delete_reference(env, w->runner_ref);
  free(w);
}

static void runner_finalize(napi_env env, void *data, void *hint) {
  struct batch_runner *r = data;
  // no drain work is alive (each holds a reference to this runner): only done jobs can remain
  release_done(env, r);
  failure_clear(&r->failure.f);
  pthread_mutex_destroy(&r->lock);
  pthread_cond_destroy(&r->cond);
  free(r);
}

static bool arg_runner(napi_env env, napi_value v, struct batch_runner **out) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throw_arg_type(env);
    return false;
  }
  *out = p;
  return true;
}

// batchRunnerOpen() -> runner
napi_value js_batch_runner_open(napi_env env, napi_callback_info info) {
  struct batch_runner *r = calloc(1, sizeof *r);
  if (!r) { throw_errno(env, ENOMEM, "applyBatch", NULL, NULL); return NULL; }
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->cond, NULL);
  napi_value ext;
  if (napi_create_external(env, r, runner_finalize, NULL, &ext) != napi_ok) {
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
    return NULL;
  }
  return ext;
}

// batchSubmit(runner, buf, end) -> seq: runs buf[0, end) on the pool after every earlier batch.
napi_value js_batch_submit(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  struct batch_runner *r;
  uint8_t *data;
  size_t len;
  int64_t end;
  if (!arg_runner(env, argv[0], &r) || !arg_bytes(env, argv[1], &data, &len) || !arg_i64(env, argv[2], &end)) return NULL;
  if (end < 0 || (uint64_t)end > len || ((uintptr_t)data & 7) != 0) {
    throw_errno(env, EINVAL, "applyBatch", NULL, NULL);
    return NULL;
  }
  release_done(env, r);
  struct batch_job *j = calloc(1, sizeof *j);
  if (!j) { throw_errno(env, ENOMEM, "applyBatch", NULL, NULL); return NULL; }
  j->data = data;
  j->len = (size_t)end;
  napi_create_reference(env, argv[1], 1, &j->buf_ref);
  pthread_mutex_lock(&r->lock);
  j->seq = ++r->submitted;
  if (r->tail) r->tail->next = j;
  else r->head = j;
  r->tail = j;
  bool start = !r->draining;
  if (start) r->draining = true;
  pthread_mutex_unlock(&r->lock);
  if (start) {
    struct drain_work *w = calloc(1, sizeof *w);
    napi_value name;
    napi_create_string_utf8(env, "overlay2:applyBatch", NAPI_AUTO_LENGTH, &name);
    if (!w || napi_create_async_work(env, NULL, name, drain_execute, drain_complete, w, &w->work) != napi_ok) {
      free(w);
      w = NULL;
    } else {
      w->r = r;
      napi_create_reference(env, argv[0], 1, &w->runner_ref);
      if (napi_queue_async_work(env, w->work) != napi_ok) {
        napi_delete_async_work(env, w->work);
        napi_delete_reference(env, w->runner_ref);
        free(w);
        w = NULL;
      }
    }
    if (!w) {
      // nothing will drain the queue: run it here (still in order), so no batch is ever lost
      struct drain_work local = {.r = r};
      drain_execute(env, &local);
    }
  }
  return js_number(env, j->seq);
}

// batchDone(runner) -> the highest seq known to have run without a failure at or before it
napi_value js_batch_done(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  struct batch_runner *r;
  if (!arg_runner(env, argv[0], &r)) return NULL;
  pthread_mutex_lock(&r->lock);
  double ok = r->failed ? r->failed_seq - 1 : r->processed;
  pthread_mutex_unlock(&r->lock);
  return js_number(env, ok);
}

// batchWait(runner, seq) -> null | Error with .seq and .index: blocks until batch `seq` and every
// earlier one were run (or skipped after a failure); returns the failure, if any, and forgets it
// (the batches after the failed one were skipped: the caller runs them itself).
napi_value js_batch_wait(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  struct batch_runner *r;
  int64_t seq;
  if (!arg_runner(env, argv[0], &r) || !arg_i64(env, argv[1], &seq)) return NULL;
  pthread_mutex_lock(&r->lock);
  if ((double)seq > r->submitted) seq = (int64_t)r->submitted;
  while (r->processed < (double)seq) pthread_cond_wait(&r->cond, &r->lock);
  struct batch_failure bf = {0};
  double failed_seq = 0;
  if (r->failed) {
    // the skipping must be over too: wait for the queue to be empty
    while (r->head || r->draining) pthread_cond_wait(&r->cond, &r->lock);
    bf = r->failure;
    memset(&r->failure, 0, sizeof r->failure);
    failed_seq = r->failed_seq;
    r->failed = false;
  }
  pthread_mutex_unlock(&r->lock);
  release_done(env, r);
  if (failed_seq > 0) return failure_value(env, &bf, failed_seq);
  napi_value n;
  napi_get_null(env, &n);
  return n;
}
