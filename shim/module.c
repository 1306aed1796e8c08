// overlay2 native shim: the few Linux syscalls Node.js does not expose, plus a batched directory
// scanner that writes packed records (records.h) into caller-provided memory. Every export is one
// syscall or one loop of them; there is no overlay policy in here (the scanner's xattr plan comes from
// the caller). src/native/shim.ts is its typed face and checks every argument's type first.
//
//   module.c       this table of exports
//   napi_args.c    Node-API helpers: arguments in, values out
//   errors.c       Node-style errors (libuv's names and messages), worker-thread failures
//   mount.c        mount, mountAt, mountAsync, umount2 and the new mount API
//   xattr.c        the one xattr reader; lgetxattr, lsetxattr, llistxattr, fsetxattr
//   fs_at.c        *at operations (openat2, mknodat, renameat2, renameat2Async, fstatatModes, ...), statfs, syncfs, flock
//   dirents.c      the one getdents64 reader; direntTypes
//   quota.c        project ids and project quotas (XFS, VFS)
//   scanner.c      scanOpen/scanNext/scanNextSync/scanClose, lookupBatch
//   xattr_plan.c   decoding the scanner's xattr plan (xattr_plan.h)
//   remove_tree.c  removeTree, removeTreeSync
//   apply_batch.c  batchRunSync, batchRunnerOpen/Submit/Done/Wait: applyDiff's small-file creates
//   records.h      the record layout (the contract with assembly/records.ts and src/core/records.ts)
//   syscalls.h     syscall numbers and structs older libc headers lack
#include <node_api.h>

#include "exports.h"

static napi_value init(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback fn; } fns[] = {
    {"mount", js_mount}, {"mountAt", js_mount_at}, {"mountAsync", js_mount_async}, {"umount2", js_umount2}, {"fsopen", js_fsopen},
    {"fsconfig", js_fsconfig}, {"fsmount", js_fsmount}, {"moveMount", js_move_mount},
    {"lgetxattr", js_lgetxattr}, {"lsetxattr", js_lsetxattr}, {"llistxattr", js_llistxattr},
    {"fsetxattr", js_fsetxattr},
    {"statfs", js_statfs}, {"direntTypes", js_dirent_types}, {"syncfs", js_syncfs}, {"flock", js_flock},
    {"openat2", js_openat2}, {"mkdirat", js_mkdirat}, {"mknodat", js_mknodat}, {"symlinkat", js_symlinkat},
    {"linkat", js_linkat}, {"unlinkat", js_unlinkat}, {"renameat2", js_renameat2}, {"renameat2Async", js_renameat2_async}, {"fchownat", js_fchownat},
    {"fchmodat", js_fchmodat}, {"utimensat", js_utimensat}, {"fstatatModes", js_fstatat_modes},
    {"scanOpen", js_scan_open}, {"scanNext", js_scan_next}, {"scanNextSync", js_scan_next_sync},
    {"scanClose", js_scan_close}, {"lookupBatch", js_lookup_batch},
    {"removeTree", js_remove_tree}, {"removeTreeSync", js_remove_tree_sync},
    {"fsxattrGet", js_fsxattr_get}, {"fsxattrSet", js_fsxattr_set},
    {"xfsQuotaSetLimit", js_xfs_quota_set_limit}, {"xfsQuotaGet", js_xfs_quota_get},
    {"vfsQuotaSetLimit", js_vfs_quota_set_limit},
    {"batchRunSync", js_batch_run_sync}, {"batchRunnerOpen", js_batch_runner_open}, {"batchSubmit", js_batch_submit},
    {"batchDone", js_batch_done}, {"batchWait", js_batch_wait},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok) return NULL;
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
