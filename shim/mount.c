// Mounting: mount(2) (also from a thread with its own cwd, or on the libuv pool), umount2(2) and the
// new mount API (fsopen, fsconfig, fsmount, move_mount). One syscall per export.
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"
#include "syscalls.h"

// mount(source, target, fstype, flags, data)
napi_value js_mount(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  int64_t flags;
  napi_value ret = NULL;
  if (!arg_string_or_null(env, argv[0], &source) || !arg_string(env, argv[1], &target) ||
      !arg_string_or_null(env, argv[2], &fstype) || !arg_i64(env, argv[3], &flags) ||
      !arg_string_or_null(env, argv[4], &data))
    goto out;
  if (mount(source, target, fstype, (unsigned long)flags, data) != 0) throw_errno(env, errno, "mount", target, NULL);
  else ret = js_undefined(env);
out:
  free(source); free(target); free(fstype); free(data);
  return ret;
}

struct mount_job {
  napi_async_work work;
  napi_ref cb;
  char *source, *target, *fstype, *data;
  unsigned long flags;
  int err;
};

static void mount_job_free(struct mount_job *j) {
  free(j->source); free(j->target); free(j->fstype); free(j->data);
  free(j);
}

static void mount_work_execute(napi_env env, void *data) {
  struct mount_job *j = data;
  if (mount(j->source, j->target, j->fstype, j->flags, j->data) != 0) j->err = errno;
}

static void mount_work_complete(napi_env env, napi_status status, void *data) {
  struct mount_job *j = data;
  napi_value cb, global, argv1[1], ignored;
  napi_get_reference_value(env, j->cb, &cb);
  if (status == napi_cancelled) argv1[0] = errno_error(env, ECANCELED, "mount", j->target, NULL);
  else if (j->err) argv1[0] = errno_error(env, j->err, "mount", j->target, NULL);
  else napi_get_null(env, &argv1[0]);
  napi_delete_async_work(env, j->work);
  napi_delete_reference(env, j->cb);
  mount_job_free(j);
  napi_get_global(env, &global);
  napi_call_function(env, global, cb, 1, argv1, &ignored); // an exception propagates as uncaught
}

// mountAsync(source, target, fstype, flags, data, callback): mount(2) on the libuv pool, where it
// may wait for the filesystem's journal without holding up the event loop; callback(err | null).
napi_value js_mount_async(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  struct mount_job *j = calloc(1, sizeof *j);
  if (!j) { throw_errno(env, ENOMEM, "mount", NULL, NULL); return NULL; }
  int64_t flags;
  if (!arg_string_or_null(env, argv[0], &j->source) || !arg_string(env, argv[1], &j->target) ||
      !arg_string_or_null(env, argv[2], &j->fstype) || !arg_i64(env, argv[3], &flags) ||
      !arg_string_or_null(env, argv[4], &j->data) || !arg_function(env, argv[5])) {
    mount_job_free(j);
    return NULL;
  }
  j->flags = (unsigned long)flags;
  napi_value name;
  napi_create_string_utf8(env, "overlay2:mount", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, mount_work_execute, mount_work_complete, j, &j->work) != napi_ok) {
    mount_job_free(j);
    return NULL;
  }
  napi_create_reference(env, argv[5], 1, &j->cb);
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    napi_delete_reference(env, j->cb);
    throw_errno(env, EAGAIN, "mount", j->target, NULL);
    mount_job_free(j);
    return NULL;
  }
  return js_undefined(env);
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
napi_value js_mount_at(napi_env env, napi_callback_info info) {
  GET_ARGS(6);
  char *dir = NULL, *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  int64_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], &dir) || !arg_string_or_null(env, argv[1], &source) ||
      !arg_string(env, argv[2], &target) || !arg_string_or_null(env, argv[3], &fstype) ||
      !arg_i64(env, argv[4], &flags) || !arg_string_or_null(env, argv[5], &data))
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
    ret = js_undefined(env);
  }
out:
  free(dir); free(source); free(target); free(fstype); free(data);
  return ret;
}

// umount2(target, flags)
napi_value js_umount2(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *target = NULL;
  int32_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], &target) || !arg_i32(env, argv[1], &flags)) goto out;
  if (umount2(target, flags) != 0) throw_errno(env, errno, "umount2", target, NULL);
  else ret = js_undefined(env);
out:
  free(target);
  return ret;
}

// fsopen(fsname, flags) -> fd
napi_value js_fsopen(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *name = NULL;
  int64_t flags;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], &name) || !arg_i64(env, argv[1], &flags)) goto out;
  long fd = syscall(SYS_fsopen, name, (unsigned int)flags);
  if (fd < 0) throw_errno(env, errno, "fsopen", name, NULL);
  else ret = js_number(env, (double)fd);
out:
  free(name);
  return ret;
}

// fsconfig(fd, cmd, key, value, aux). A Buffer value is passed as binary with aux = its length.
napi_value js_fsconfig(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t fd, cmd, aux;
  char *key = NULL, *owned = NULL;
  uint8_t *value = NULL;
  size_t vlen = 0;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &fd) || !arg_i32(env, argv[1], &cmd) ||
      !arg_string_or_null(env, argv[2], &key) || !arg_i32(env, argv[4], &aux))
    goto out;
  if (!is_nullish(env, argv[3])) {
    if (is_string(env, argv[3])) {
      if (!arg_string(env, argv[3], &owned)) goto out;
      value = (uint8_t *)owned;
    } else {
      if (!arg_bytes(env, argv[3], &value, &vlen)) goto out;
      aux = (int32_t)vlen;
    }
  }
  if (syscall(SYS_fsconfig, fd, (unsigned int)cmd, key, value, aux) != 0)
    throw_errno(env, errno, "fsconfig", owned ? owned : key, NULL);
  else
    ret = js_undefined(env);
out:
  free(key); free(owned);
  return ret;
}

// fsmount(fd, flags, attrFlags) -> mount fd
napi_value js_fsmount(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t fd;
  int64_t flags, attr;
  if (!arg_i32(env, argv[0], &fd) || !arg_i64(env, argv[1], &flags) ||
      !arg_i64(env, argv[2], &attr))
    return NULL;
  long mfd = syscall(SYS_fsmount, fd, (unsigned int)flags, (unsigned int)attr);
  if (mfd < 0) { throw_errno(env, errno, "fsmount", NULL, NULL); return NULL; }
  return js_number(env, (double)mfd);
}

// moveMount(fromDirfd, fromPath, toDirfd, toPath, flags)
napi_value js_move_mount(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  int32_t from_fd, to_fd;
  int64_t flags;
  char *from = NULL, *to = NULL;
  napi_value ret = NULL;
  if (!arg_i32(env, argv[0], &from_fd) || !arg_string(env, argv[1], &from) ||
      !arg_i32(env, argv[2], &to_fd) || !arg_string(env, argv[3], &to) ||
      !arg_i64(env, argv[4], &flags))
    goto out;
  if (syscall(SYS_move_mount, from_fd, from, to_fd, to, (unsigned int)flags) != 0)
    throw_errno(env, errno, "move_mount", from, to);
  else
    ret = js_undefined(env);
out:
  free(from); free(to);
  return ret;
}
