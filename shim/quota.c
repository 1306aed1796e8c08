// Project quotas: the project id of a directory (FS_IOC_FSGETXATTR/FSSETXATTR) and a project's block
// limit, through XFS's quota manager or the generic VFS quota interface (ext4). One syscall per export
// (fsxattrSet: the get-modify-set pair one ioctl field update needs).
#include <sys/ioctl.h>
#include <sys/quota.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "exports.h"
#include "napi_args.h"

// fsxattrGet(fd) -> {xflags, projid, extsize, nextents, cowextsize}   (ioctl FS_IOC_FSGETXATTR)
napi_value js_fsxattr_get(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  int32_t fd;
  if (!arg_i32(env, argv[0], &fd)) return NULL;
  struct fsxattr fsx;
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0) { throw_errno(env, errno, "ioctl", NULL, NULL); return NULL; }
  napi_value ret;
  napi_create_object(env, &ret);
  set_num_prop(env, ret, "xflags", fsx.fsx_xflags);
  set_num_prop(env, ret, "projid", fsx.fsx_projid);
  set_num_prop(env, ret, "extsize", fsx.fsx_extsize);
  set_num_prop(env, ret, "nextents", fsx.fsx_nextents);
  set_num_prop(env, ret, "cowextsize", fsx.fsx_cowextsize);
  return ret;
}

// fsxattrSet(fd, xflags, projid): FS_IOC_FSGETXATTR then FS_IOC_FSSETXATTR with those two fields
// replaced, so the fields the caller did not name keep their values.
napi_value js_fsxattr_set(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  int32_t fd;
  int64_t xflags, projid;
  if (!arg_i32(env, argv[0], &fd) || !arg_i64(env, argv[1], &xflags) ||
      !arg_i64(env, argv[2], &projid))
    return NULL;
  struct fsxattr fsx;
  if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0) { throw_errno(env, errno, "ioctl", NULL, NULL); return NULL; }
  fsx.fsx_xflags = (uint32_t)xflags;
  fsx.fsx_projid = (uint32_t)projid;
  if (ioctl(fd, FS_IOC_FSSETXATTR, &fsx) != 0) { throw_errno(env, errno, "ioctl", NULL, NULL); return NULL; }
  return js_undefined(env);
}

// xfsQuotaSetLimit(device, projid, bytes): quotactl(Q_XSETQLIM, PRJQUOTA) with hard = soft = bytes
// (0 removes the limit).
napi_value js_xfs_quota_set_limit(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  char *dev = NULL;
  int64_t projid, bytes;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], &dev) || !arg_i64(env, argv[1], &projid) ||
      !arg_i64(env, argv[2], &bytes))
    goto out;
  struct fs_disk_quota d;
  memset(&d, 0, sizeof d);
  d.d_version = FS_DQUOT_VERSION;
  d.d_id = (uint32_t)projid;
  d.d_flags = FS_PROJ_QUOTA;
  d.d_fieldmask = FS_DQ_BHARD | FS_DQ_BSOFT;
  d.d_blk_hardlimit = (uint64_t)bytes / 512;
  d.d_blk_softlimit = d.d_blk_hardlimit;
  if (quotactl(QCMD(Q_XSETQLIM, PRJQUOTA), dev, (int)projid, (caddr_t)&d) != 0) {
    throw_errno(env, errno, "quotactl", dev, NULL);
    goto out;
  }
  ret = js_undefined(env);
out:
  free(dev);
  return ret;
}

// vfsQuotaSetLimit(device, projid, bytes): quotactl(Q_SETQUOTA, PRJQUOTA) with hard = soft = bytes
// (0 removes the limit): the generic quota interface, for file systems whose project quotas live in
// the VFS quota files (ext4 with -O quota,project) rather than in XFS's own quota manager.
napi_value js_vfs_quota_set_limit(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  char *dev = NULL;
  int64_t projid, bytes;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], &dev) || !arg_i64(env, argv[1], &projid) ||
      !arg_i64(env, argv[2], &bytes))
    goto out;
  struct if_dqblk q;
  memset(&q, 0, sizeof q);
  // dqb_b*limit count 1 KiB quota blocks (QIF_DQBLKSIZE); round up so the limit is never below bytes.
  q.dqb_bhardlimit = ((uint64_t)bytes + 1023) / 1024;
  q.dqb_bsoftlimit = q.dqb_bhardlimit;
  q.dqb_valid = QIF_BLIMITS;
  if (quotactl(QCMD(Q_SETQUOTA, PRJQUOTA), dev, (int)projid, (caddr_t)&q) != 0) {
    throw_errno(env, errno, "quotactl", dev, NULL);
    goto out;
  }
  ret = js_undefined(env);
out:
  free(dev);
  return ret;
}

// xfsQuotaGet(device, projid) -> {limitBytes, usedBytes}   (quotactl Q_XGETQUOTA, PRJQUOTA)
napi_value js_xfs_quota_get(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  char *dev = NULL;
  int64_t projid;
  napi_value ret = NULL;
  if (!arg_string(env, argv[0], &dev) || !arg_i64(env, argv[1], &projid)) goto out;
  struct fs_disk_quota d;
  memset(&d, 0, sizeof d);
  if (quotactl(QCMD(Q_XGETQUOTA, PRJQUOTA), dev, (int)projid, (caddr_t)&d) != 0) {
    throw_errno(env, errno, "quotactl", dev, NULL);
    goto out;
  }
  napi_create_object(env, &ret);
  set_num_prop(env, ret, "limitBytes", (double)d.d_blk_hardlimit * 512);
  set_num_prop(env, ret, "usedBytes", (double)d.d_bcount * 512);
out:
  free(dev);
  return ret;
}
