// Every export of the addon, by the file that holds it; module.c registers them.
#pragma once
#include <node_api.h>

// mount.c
napi_value js_mount(napi_env env, napi_callback_info info);
napi_value js_mount_at(napi_env env, napi_callback_info info);
napi_value js_mount_async(napi_env env, napi_callback_info info);
napi_value js_umount2(napi_env env, napi_callback_info info);
napi_value js_fsopen(napi_env env, napi_callback_info info);
napi_value js_fsconfig(napi_env env, napi_callback_info info);
napi_value js_fsmount(napi_env env, napi_callback_info info);
napi_value js_move_mount(napi_env env, napi_callback_info info);
// xattr.c
napi_value js_lgetxattr(napi_env env, napi_callback_info info);
napi_value js_lsetxattr(napi_env env, napi_callback_info info);
napi_value js_llistxattr(napi_env env, napi_callback_info info);
napi_value js_fsetxattr(napi_env env, napi_callback_info info);
// fs_at.c
napi_value js_statfs(napi_env env, napi_callback_info info);
napi_value js_syncfs(napi_env env, napi_callback_info info);
napi_value js_flock(napi_env env, napi_callback_info info);
napi_value js_openat2(napi_env env, napi_callback_info info);
napi_value js_mkdirat(napi_env env, napi_callback_info info);
napi_value js_mknodat(napi_env env, napi_callback_info info);
napi_value js_symlinkat(napi_env env, napi_callback_info info);
napi_value js_linkat(napi_env env, napi_callback_info info);
napi_value js_unlinkat(napi_env env, napi_callback_info info);
napi_value js_renameat2(napi_env env, napi_callback_info info);
napi_value js_renameat2_async(napi_env env, napi_callback_info info);
napi_value js_fchownat(napi_env env, napi_callback_info info);
napi_value js_fchmodat(napi_env env, napi_callback_info info);
napi_value js_utimensat(napi_env env, napi_callback_info info);
napi_value js_fstatat_modes(napi_env env, napi_callback_info info);
// dirents.c
napi_value js_dirent_types(napi_env env, napi_callback_info info);
// quota.c
napi_value js_fsxattr_get(napi_env env, napi_callback_info info);
napi_value js_fsxattr_set(napi_env env, napi_callback_info info);
napi_value js_xfs_quota_set_limit(napi_env env, napi_callback_info info);
napi_value js_xfs_quota_get(napi_env env, napi_callback_info info);
napi_value js_vfs_quota_set_limit(napi_env env, napi_callback_info info);
// scanner.c
napi_value js_scan_open(napi_env env, napi_callback_info info);
napi_value js_scan_next(napi_env env, napi_callback_info info);
napi_value js_scan_next_sync(napi_env env, napi_callback_info info);
napi_value js_scan_close(napi_env env, napi_callback_info info);
napi_value js_lookup_batch(napi_env env, napi_callback_info info);
// apply_batch.c
napi_value js_batch_run_sync(napi_env env, napi_callback_info info);
napi_value js_batch_runner_open(napi_env env, napi_callback_info info);
napi_value js_batch_submit(napi_env env, napi_callback_info info);
napi_value js_batch_done(napi_env env, napi_callback_info info);
napi_value js_batch_wait(napi_env env, napi_callback_info info);
// remove_tree.c
napi_value js_remove_tree(napi_env env, napi_callback_info info);
napi_value js_remove_tree_sync(napi_env env, napi_callback_info info);
