// Linux constants the shim's callers pass through unchanged (x86-64 and arm64 share these values).

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;

export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const MNT_EXPIRE = 0x4;
export const UMOUNT_NOFOLLOW = 0x8;

export const FSOPEN_CLOEXEC = 0x1;
export const FSCONFIG_SET_FLAG = 0;
export const FSCONFIG_SET_STRING = 1;
export const FSCONFIG_SET_BINARY = 2;
export const FSCONFIG_SET_PATH = 3;
export const FSCONFIG_SET_PATH_EMPTY = 4;
export const FSCONFIG_SET_FD = 5;
export const FSCONFIG_CMD_CREATE = 6;
export const FSCONFIG_CMD_RECONFIGURE = 7;
export const FSMOUNT_CLOEXEC = 0x1;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_SYMLINK_FOLLOW = 0x400;
export const AT_EMPTY_PATH = 0x1000;

export const RENAME_NOREPLACE = 0x1;
export const RENAME_EXCHANGE = 0x2;
export const RENAME_WHITEOUT = 0x4;

export const RESOLVE_NO_XDEV = 0x1;
export const RESOLVE_NO_MAGICLINKS = 0x2;
export const RESOLVE_NO_SYMLINKS = 0x4;
export const RESOLVE_BENEATH = 0x8;
export const RESOLVE_IN_ROOT = 0x10;

export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;

// statfs f_type magics (linux/magic.h) for the backing-filesystem checks
export const FS_MAGIC = {
  overlay: 0x794c7630,
  aufs: 0x61756673,
  btrfs: 0x9123683e,
  ecryptfs: 0xf15f,
  ext4: 0xef53,
  f2fs: 0xf2f52010,
  nfs: 0x6969,
  ramfs: 0x858458f6,
  tmpfs: 0x01021994,
  xfs: 0x58465342,
  zfs: 0x2fc12fc1,
  squashfs: 0x73717368,
  fuse: 0x65735546,
  cramfs: 0x28cd3d45,
  gpfs: 0x47504653,
  jffs2: 0x000072b6,
  nilfs: 0x3434,
  smb2: 0xfe534d42,
  cifs: 0xff534d42,
  vxfs: 0xa501fcf5,
  ceph: 0x00c36400,
  erofs: 0xe0f5e1e2,
} as const;

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

// statfs f_type magics of kernel pseudo filesystems (linux/magic.h): a driver home on one of these
// is a mistake (`--home /proc`), refused before anything is touched. devtmpfs reports tmpfs's magic.
export const PSEUDO_FS_MAGIC: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0x64626720: 'debugfs',
  0x73636673: 'securityfs',
  0x74726163: 'tracefs',
  0xcafe4a11: 'bpf',
  0x6165676c: 'pstore',
  0x62656570: 'configfs',
  0xde5e81e4: 'efivarfs',
  0x1cd1: 'devpts',
  0x19800202: 'mqueue',
  0x42494e4d: 'binfmt_misc',
  0x65735543: 'fusectl',
  0xf97cff8c: 'selinuxfs',
  0x6e736673: 'nsfs',
  0x0187: 'autofs',
};

// utimensat's special nanosecond values: set that time to now / leave it unchanged.
export const UTIME_NOW = 2 ** 30 - 1;
export const UTIME_OMIT = 2 ** 30 - 2;
