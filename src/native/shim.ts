// The typed face of the C shim (shim/overlay2_shim.c). Every function is one syscall or one
// batched loop of them; every failure throws a Node-style Error (see ShimError). No policy here.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The error every shim function throws: shaped like Node's own fs errors. */
export interface ShimError extends Error {
  code: string;     // 'ENOENT'
  errno: number;    // negative, as Node's fs errors: -2
  syscall: string;  // 'mount'
  path?: string;    // the path the call was about, when it had one
  dest?: string;    // the second path (rename, link, symlink), when it had one
}

export interface StatFs {
  type: number; bsize: number; blocks: number; bfree: number; bavail: number;
  files: number; ffree: number; namelen: number; frsize: number; flags: number;
}

/** Opaque handle of a resumable directory scan. */
export interface ScanHandle { readonly __scan: unique symbol }

export interface ScanBatch {
  count: number;    // records written
  heapUsed: number; // bytes of the heap region used
  done: boolean;    // nothing left to scan
}

export interface Shim {
  // mounting
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** mount() from a short-lived native thread that unshare(CLONE_FS)s and chdir(dir)s first, so
   *  relative paths in source/target/data resolve against dir; the process cwd is never touched. */
  mountAt(dir: string, source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  fsopen(fsname: string, flags: number): number;
  fsconfig(fd: number, cmd: number, key: string | null, value: string | Buffer | null, aux: number): void;
  fsmount(fd: number, flags: number, attrFlags: number): number;
  moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): void;

  // extended attributes (l*: never follow a final symlink; f*: on an open fd)
  lgetxattr(path: string, name: string): Buffer | null;   // null when the attribute is absent (ENODATA)
  lsetxattr(path: string, name: string, value: Buffer | string, flags: number): void;
  llistxattr(path: string): string[];
  lremovexattr(path: string, name: string): void;
  fgetxattr(fd: number, name: string): Buffer | null;
  fsetxattr(fd: number, name: string, value: Buffer | string, flags: number): void;

  // filesystem facts
  statfs(path: string): StatFs;
  /** d_type of every entry getdents64 returns for `path` ("." and ".." excluded); 0 = DT_UNKNOWN. */
  direntTypes(path: string): number[];
  syncfs(fd: number): void;

  // project quotas (XFS)
  fsxattrGet(fd: number): { xflags: number; projid: number; extsize: number; nextents: number; cowextsize: number };
  /** Sets the xflags and project id of the inode behind fd, keeping its other fsxattr fields. */
  fsxattrSet(fd: number, xflags: number, projid: number): void;
  /** quotactl(Q_XSETQLIM, PRJQUOTA) on the block device: hard = soft = bytes (0 = no limit). */
  xfsQuotaSetLimit(device: string, projid: number, bytes: number): void;
  xfsQuotaGet(device: string, projid: number): { limitBytes: number; usedBytes: number };

  // *at operations, for work that must stay beneath a directory fd
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  mkdirat(dirfd: number, path: string, mode: number): void;
  mknodat(dirfd: number, path: string, mode: number, major: number, minor: number): void;
  symlinkat(target: string, dirfd: number, path: string): void;
  linkat(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): void;
  unlinkat(dirfd: number, path: string, flags: number): void;
  renameat2(oldDirfd: number, oldPath: string, newDirfd: number, newPath: string, flags: number): void;
  fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number): void;
  fchmodat(dirfd: number, path: string, mode: number): void;
  utimensat(dirfd: number, path: string, atimeSec: number, atimeNsec: number,
            mtimeSec: number, mtimeNsec: number, flags: number): void;

  // batched directory scanning into caller-provided regions (layout: assembly/records.ts)
  /** Opens `path` (relative to dirfd, or absolute with AT_FDCWD) for a resumable depth-first scan. */
  scanOpen(dirfd: number, path: string, flags: number): ScanHandle;
  /** Fills records/heap on the libuv pool; calls back once with the batch. */
  scanNext(handle: ScanHandle, records: Uint8Array, heap: Uint8Array,
           callback: (err: ShimError | null, batch: ScanBatch) => void): void;
  scanNextSync(handle: ScanHandle, records: Uint8Array, heap: Uint8Array): ScanBatch;
  /** Closes every fd the scan holds; idempotent. */
  scanClose(handle: ScanHandle): void;
  /** fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) for `count` NUL-terminated names packed in `names`,
   *  one record each, in order (nameOff points into `names`); extras go to heap, packed one after another
   *  in record order (a record's extra starts at the sum of the earlier records' extraLen). A name that
   *  cannot be stat'ed gives mode 0, FLAG_FAILED, nlink = its errno. Returns heap bytes used. */
  lookupBatch(dirfd: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array, flags: number): number;

  // tree removal through directory fds only (see removeTree in src/layout/remove-tree.ts)
  /** Deletes `path` (relative, resolved beneath dirfd with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
   *  RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) and everything below it on the libuv pool. Every
   *  directory is opened from its parent's fd the same way: a symlink is unlinked, never followed; a
   *  mount point is not entered (EXDEV naming it, nothing below it deleted); a name that keeps changing
   *  type fails after a bounded number of attempts. A missing path is not an error. */
  removeTree(dirfd: number, path: string, callback: (err: ShimError | null) => void): void;
  removeTreeSync(dirfd: number, path: string): void;

  /** Special nanosecond values for utimensat: set that time to now / leave it unchanged. */
  readonly UTIME_NOW: number;
  readonly UTIME_OMIT: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Where the addon may be: this checkout's own build, the prebuilt platform package made with
 *  @napi-rs/cli (installed as an optional dependency), or its staging dir npm/<platform>/. */
export function shimCandidates(): string[] {
  const root = findPackageRoot(here);
  const platform = `linux-${process.arch}-gnu`;
  return [
    join(root, 'shim', 'build', 'Release', 'overlay2_shim.node'),
    `overlay2-${platform}`,
    join(root, 'npm', platform, `overlay2-shim.${platform}.node`),
  ];
}

function findPackageRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
  return dir;
}

let loaded: Shim | null | undefined;
let loadError: Error | undefined;

/** The shim, or null when it is not built for this machine (callers fall back or say why). */
export function tryLoadShim(): Shim | null {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  for (const c of shimCandidates()) {
    try {
      loaded = require(c) as Shim;
      return loaded;
    } catch (e) {
      loadError ??= e as Error;
    }
  }
  loaded = null;
  return null;
}

/** The shim, or an ERR_NOT_SUPPORTED error naming where it looked. */
export function loadShim(): Shim {
  const s = tryLoadShim();
  if (s) return s;
  const err = new Error(`overlay2: the native shim is not built (run \`npm run build:shim\`): ${loadError?.message ?? 'not found'}`) as Error & { code: string };
  err.code = 'ERR_NOT_SUPPORTED';
  throw err;
}
