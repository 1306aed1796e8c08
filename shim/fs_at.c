// *at operations (for work that must stay beneath a directory fd) and filesystem facts (statfs,
// syncfs, flock). One syscall per export (renameat2Async: the same one on the libuv pool).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"
#include "syscalls.h"

// openat2(dirfd, path, flags, mode, resolve) -> fd
napi_value js_openat2(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t dirfd;
  int64_t flags, mode, resolve;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i64(env, argv[2], &flags) || !arg_i64(env, argv[3], &mode) ||
      !arg_i64(env, argv[4], &resolve))
    goto out;
  struct shim_open_how how = {(uint64_t)(uint32_t)flags, (uint64_t)mode, (uint64_t)resolve};
  long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  if (fd < 0) throw_errno(env, errno, "openat2", path, NULL);
  else ret = js_number(env, (double)fd);
out:
  free(path);
  return ret;
}

// mkdirat(dirfd, path, mode)
napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  int64_t mode;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i64(env, argv[2], &mode))
    goto out;
  if (mkdirat(dirfd, path, (mode_t)mode) != 0) throw_errno(env, errno, "mkdirat", path, NULL);
  else ret = js_undefined(env);
out:
  free(path);
  return ret;
}

// mknodat(dirfd, path, mode, major, minor)
napi_value js_mknodat(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t dirfd;
  int64_t mode, maj, min;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i64(env, argv[2], &mode) || !arg_i64(env, argv[3], &maj) ||
      !arg_i64(env, argv[4], &min))
    goto out;
  if (mknodat(dirfd, path, (mode_t)mode, makedev((unsigned int)maj, (unsigned int)min)) != 0)
    throw_errno(env, errno, "mknodat", path, NULL);
  else
    ret = js_undefined(env);
out:
  free(path);
  return ret;
}

// symlinkat(target, dirfd, path)
napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  char *target = NULL, *path = NULL;
  napi_value ret = NULL;
  if (!arg_path(env, argv[0], &target) || !arg_i32(env, argv[1], &dirfd) ||
      !arg_path(env, argv[2], &path))
    goto out;
  if (symlinkat(target, dirfd, path) != 0) throw_errno(env, errno, "symlinkat", target, path);
  else ret = js_undefined(env);
out:
  free(target); free(path);
  return ret;
}

// linkat(oldDirfd, oldPath, newDirfd, newPath, flags)
napi_value js_linkat(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t ofd, nfd, flags;
  char *oldp = NULL, *newp = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &ofd) || !arg_path(env, argv[1], &oldp) ||
      !arg_i32(env, argv[2], &nfd) || !arg_path(env, argv[3], &newp) ||
      !arg_i32(env, argv[4], &flags))
    goto out;
  if (linkat(ofd, oldp, nfd, newp, flags) != 0) throw_errno(env, errno, "linkat", oldp, newp);
  else ret = js_undefined(env);
out:
  free(oldp); free(newp);
  return ret;
}

// unlinkat(dirfd, path, flags)
napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd, flags;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i32(env, argv[2], &flags))
    goto out;
  if (unlinkat(dirfd, path, flags) != 0) throw_errno(env, errno, "unlinkat", path, NULL);
  else ret = js_undefined(env);
out:
  free(path);
  return ret;
}

// renameat2(oldDirfd, oldPath, newDirfd, newPath, flags)
napi_value js_renameat2(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t ofd, nfd;
  int64_t flags;
  char *oldp = NULL, *newp = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &ofd) || !arg_path(env, argv[1], &oldp) ||
      !arg_i32(env, argv[2], &nfd) || !arg_path(env, argv[3], &newp) ||
      !arg_i64(env, argv[4], &flags))
    goto out;
  if (syscall(SYS_renameat2, ofd, oldp, nfd, newp, (unsigned int)flags) != 0)
    throw_errno(env, errno, "renameat2", oldp, newp);
  else
    ret = js_undefined(env);
out:
  free(oldp); free(newp);
  return ret;
}

struct rename_job {
  napi_async_work work;
  napi_ref cb;
  int32_t ofd, nfd;
  unsigned int flags;
  char *oldp, *newp;
  int err;
};

static void rename_job_free(struct rename_job *j) {
  free(j->oldp); free(j->newp);
  free(j);
}

static void rename_work_execute(napi_env env, void *data) {
  struct rename_job *j = data;
  if (syscall(SYS_renameat2, j->ofd, j->oldp, j->nfd, j->newp, j->flags) != 0) j->err = errno;
}

static void rename_work_complete(napi_env env, napi_status status, void *data) {
  struct rename_job *j = data;
  napi_value cb, global, argv1[1], ignored;
  napi_get_reference_value(env, j->cb, &cb);
  if (status == napi_cancelled) argv1[0] = errno_error(env, ECANCELED, "renameat2", j->oldp, j->newp);
  else if (j->err) argv1[0] = errno_error(env, j->err, "renameat2", j->oldp, j->newp);
  else napi_get_null(env, &argv1[0]);
  napi_delete_async_work(env, j->work);
  napi_delete_reference(env, j->cb);
  rename_job_free(j);
  napi_get_global(env, &global);
  napi_call_function(env, global, cb, 1, argv1, &ignored); // an exception propagates as uncaught
}

// renameat2Async(oldDirfd, oldPath, newDirfd, newPath, flags, callback): renameat2(2) on the libuv
// pool, where it may wait for the filesystem's journal without holding up the event loop;
// callback(err | null).
napi_value js_renameat2_async(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  struct rename_job *j = calloc(1, sizeof *j);
  if (!j) { throw_errno(env, ENOMEM, "renameat2", NULL, NULL); return NULL; }
  int64_t flags;
  if (!arg_i32(env, argv[0], &j->ofd) || !arg_path(env, argv[1], &j->oldp) ||
      !arg_i32(env, argv[2], &j->nfd) || !arg_path(env, argv[3], &j->newp) ||
      !arg_i64(env, argv[4], &flags) || !arg_function(env, argv[5])) {
    rename_job_free(j);
    return NULL;
  }
  j->flags = (unsigned int)flags;
  napi_value name;
  napi_create_string_utf8(env, "overlay2:renameat2", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, rename_work_execute, rename_work_complete, j, &j->work) != napi_ok) {
    rename_job_free(j);
    return NULL;
  }
  napi_create_reference(env, argv[5], 1, &j->cb);
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    napi_delete_reference(env, j->cb);
    throw_errno(env, EAGAIN, "renameat2", j->oldp, j->newp);
    rename_job_free(j);
    return NULL;
  }
  return js_undefined(env);
}

// fchownat(dirfd, path, uid, gid, flags); -1 leaves an id unchanged
napi_value js_fchownat(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t dirfd, flags;
  int64_t uid, gid;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i64(env, argv[2], &uid) || !arg_i64(env, argv[3], &gid) ||
      !arg_i32(env, argv[4], &flags))
    goto out;
  if (fchownat(dirfd, path, (uid_t)uid, (gid_t)gid, flags) != 0) throw_errno(env, errno, "fchownat", path, NULL);
  else ret = js_undefined(env);
out:
  free(path);
  return ret;
}

// fchmodat(dirfd, path, mode)
napi_value js_fchmodat(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t dirfd;
  int64_t mode;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i64(env, argv[2], &mode))
    goto out;
  if (fchmodat(dirfd, path, (mode_t)mode, 0) != 0) throw_errno(env, errno, "fchmodat", path, NULL);
  else ret = js_undefined(env);
out:
  free(path);
  return ret;
}

// utimensat(dirfd, path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags)
napi_value js_utimensat(napi_env env, napi_callback_info info) {
  GET_ARGS(7);
  int32_t dirfd, flags;
  int64_t as, an, ms, mn;
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_path(env, argv[1], &path) ||
      !arg_i64(env, argv[2], &as) || !arg_i64(env, argv[3], &an) ||
      !arg_i64(env, argv[4], &ms) || !arg_i64(env, argv[5], &mn) ||
      !arg_i32(env, argv[6], &flags))
    goto out;
  struct timespec ts[2] = {{(time_t)as, (long)an}, {(time_t)ms, (long)mn}};
  if (utimensat(dirfd, path, ts, flags) != 0) throw_errno(env, errno, "utimensat", path, NULL);
  else ret = js_undefined(env);
out:
  free(path);
  return ret;
}

// fstatatModes(dirfd, paths, count, modes) — fstatat(dirfd, path, AT_SYMLINK_NOFOLLOW) for `count`
// NUL-terminated paths packed in `paths`: modes (an int32 array's bytes) gets st_mode, or -errno.
// One call for thousands of lookups: from JS each synchronous lookup costs ten times its syscall.
napi_value js_fstatat_modes(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  int32_t dirfd;
  int64_t count;
  uint8_t *paths, *modes;
  size_t paths_len, modes_len;
  if (!arg_i32(env, argv[0], &dirfd) || !arg_bytes(env, argv[1], &paths, &paths_len) ||
      !arg_i64(env, argv[2], &count) || !arg_bytes(env, argv[3], &modes, &modes_len))
    return NULL;
  if (count < 0 || (uint64_t)count > modes_len / sizeof(int32_t)) {
    throw_errno(env, ENOBUFS, "fstatat", NULL, NULL);
    return NULL;
  }
  size_t off = 0;
  for (int64_t i = 0; i < count; i++) {
    const uint8_t *end = off < paths_len ? memchr(paths + off, 0, paths_len - off) : NULL;
    if (!end) { throw_errno(env, EINVAL, "fstatat", NULL, NULL); return NULL; }
    struct stat st;
    int32_t m = fstatat(dirfd, (const char *)paths + off, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (int32_t)st.st_mode : -errno;
    memcpy(modes + (size_t)i * sizeof m, &m, sizeof m);
    off = (size_t)(end - paths) + 1;
  }
  return js_undefined(env);
}

// statfs(path) -> {type, bsize, blocks, bfree, bavail, files, ffree, namelen, frsize, flags}
napi_value js_statfs(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  char *path = NULL;
  napi_value ret = NULL;
  if (!arg_path(env, argv[0], &path)) goto out;
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
napi_value js_syncfs(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_i32(env, argv[0], &fd)) return NULL;
  if (syncfs(fd) != 0) { throw_errno(env, errno, "syncfs", NULL, NULL); return NULL; }
  return js_undefined(env);
}

// flock(fd, operation): advisory whole-file lock; the kernel drops it when the holder dies, which
// is what cross-process state in the home needs (no stale lock files after a crash).
napi_value js_flock(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  int32_t fd, op;
  if (!arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &op)) return NULL;
  int rc;
  do { rc = flock(fd, op); } while (rc != 0 && errno == EINTR);
  if (rc != 0) { throw_errno(env, errno, "flock", NULL, NULL); return NULL; }
  return js_undefined(env);
}
