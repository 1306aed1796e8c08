// The typed face of the C shim (shim/*.c, table in shim/module.c). Every function is one syscall or
// one batched loop of them; every failure throws a Node-style Error (see ShimError). No policy here.
// Argument types are checked here, before the call reaches C (which assumes well-typed arguments), and
// the scanner's SCAN_* xattr flags become the xattr plan the C scanner reads (src/native/xattr-plan.ts).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Overlay2Error } from '../errors.js';
import { WALK_FLAGS_MASK, planForScanFlags } from './xattr-plan.js';

/** The error every shim function throws: shaped like Node's own fs errors. */
export interface ShimError extends Error {
  code: string;     // 'ENOENT'
  errno: number;    // negative, as Node's fs errors: -2
  syscall: string;  // 'mount'
  path?: string;    // the path the call was about, when it had one
  dest?: string;    // the second path (rename, link, symlink), when it had one
}

/** A path or file name: a string (its UTF-8 is what the kernel sees) or the exact bytes (a file name
 *  is bytes and need not be UTF-8: src/util/byte-names.ts). */
export type ShimPath = string | Uint8Array;

export interface StatFs {
  type: number; bsize: number; blocks: number; bfree: number; bavail: number;
  files: number; ffree: number; namelen: number; frsize: number; flags: number;
}

/** Opaque handle of a resumable directory scan. */
export interface ScanHandle { readonly __scan: unique symbol }

/** Opaque handle of a batch runner (batchRunnerOpen). */
export interface BatchRunner { readonly __batchRunner: unique symbol }

/** A failed op of a file batch: the system error of its syscall, plus where it stopped. */
export interface BatchFailure extends ShimError {
  /** The op that failed, counted from the start of the run (earlier ops are done). */
  index: number;
  /** batchWait: the batch it belongs to (the later ones were skipped). */
  seq?: number;
}

export interface ScanBatch {
  count: number;    // records written
  heapUsed: number; // bytes of the heap region used
  done: boolean;    // nothing left to scan
  /** SCAN_SPLIT: the segment of the pre-order these records belong to (src/scan/split.ts). */
  segment?: number;
  /** SCAN_SPLIT, on a segment's first batch: the segment it follows in the walk (-1: none, the first). */
  after?: number;
  /** SCAN_SPLIT: the segment is complete with this batch. */
  segmentDone?: boolean;
  /** SCAN_SPLIT, with segmentDone: how many segments were split off it (each names it as `after`). */
  stolen?: number;
}

export interface Shim {
  // mounting
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** mount() from a short-lived native thread that unshare(CLONE_FS)s and chdir(dir)s first, so
   *  relative paths in source/target/data resolve against dir; the process cwd is never touched. */
  mountAt(dir: string, source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** mount() on the libuv pool (it can wait for the filesystem's journal); calls back once. */
  mountAsync(source: string, target: string, fstype: string | null, flags: number, data: string | null,
             callback: (err: ShimError | null) => void): void;
  umount2(target: string, flags: number): void;
  fsopen(fsname: string, flags: number): number;
  fsconfig(fd: number, cmd: number, key: string | null, value: string | Buffer | null, aux: number): void;
  fsmount(fd: number, flags: number, attrFlags: number): number;
  moveMount(fromDirfd: number, fromPath: string, toDirfd: number, toPath: string, flags: number): void;

  // extended attributes (l*: never follow a final symlink; f*: on an open fd)
  lgetxattr(path: ShimPath, name: string): Buffer | null;   // null when the attribute is absent (ENODATA)
  lsetxattr(path: ShimPath, name: string, value: Buffer | string, flags: number): void;
  llistxattr(path: ShimPath): string[];
  fsetxattr(fd: number, name: string, value: Buffer | string, flags: number): void;

  // filesystem facts
  statfs(path: ShimPath): StatFs;
  /** d_type of every entry getdents64 returns for `path` ("." and ".." excluded); 0 = DT_UNKNOWN. */
  direntTypes(path: ShimPath): number[];
  syncfs(fd: number): void;
  /** flock(fd, operation) (LOCK_EX, LOCK_UN, LOCK_NB...): released by the kernel when the process dies. */
  flock(fd: number, operation: number): void;

  // project quotas (XFS; ext4 through the generic quota interface)
  fsxattrGet(fd: number): { xflags: number; projid: number; extsize: number; nextents: number; cowextsize: number };
  /** Sets the xflags and project id of the inode behind fd, keeping its other fsxattr fields. */
  fsxattrSet(fd: number, xflags: number, projid: number): void;
  /** quotactl(Q_XSETQLIM, PRJQUOTA) on the block device: hard = soft = bytes (0 = no limit). */
  xfsQuotaSetLimit(device: string, projid: number, bytes: number): void;
  xfsQuotaGet(device: string, projid: number): { limitBytes: number; usedBytes: number };
  /** quotactl(Q_SETQUOTA, PRJQUOTA) on the block device (ext4): hard = soft = bytes rounded up to KiB (0 = no limit). */
  vfsQuotaSetLimit(device: string, projid: number, bytes: number): void;

  // *at operations, for work that must stay beneath a directory fd
  openat2(dirfd: number, path: ShimPath, flags: number, mode: number, resolve: number): number;
  mkdirat(dirfd: number, path: ShimPath, mode: number): void;
  mknodat(dirfd: number, path: ShimPath, mode: number, major: number, minor: number): void;
  symlinkat(target: ShimPath, dirfd: number, path: ShimPath): void;
  linkat(oldDirfd: number, oldPath: ShimPath, newDirfd: number, newPath: ShimPath, flags: number): void;
  unlinkat(dirfd: number, path: ShimPath, flags: number): void;
  renameat2(oldDirfd: number, oldPath: ShimPath, newDirfd: number, newPath: ShimPath, flags: number): void;
  /** renameat2() on the libuv pool (it can wait for the filesystem's journal); calls back once. The
   *  dirfds must stay open until then. */
  renameat2Async(oldDirfd: number, oldPath: ShimPath, newDirfd: number, newPath: ShimPath, flags: number,
                 callback: (err: ShimError | null) => void): void;
  fchownat(dirfd: number, path: ShimPath, uid: number, gid: number, flags: number): void;
  fchmodat(dirfd: number, path: ShimPath, mode: number): void;
  utimensat(dirfd: number, path: ShimPath, atimeSec: number, atimeNsec: number,
            mtimeSec: number, mtimeNsec: number, flags: number): void;
  /** fstatat(dirfd, path, AT_SYMLINK_NOFOLLOW) for `count` NUL-terminated paths packed in `paths`, in
   *  one call: `modes` (the bytes of an Int32Array of at least `count`) gets each st_mode, or -errno. */
  fstatatModes(dirfd: number, paths: Uint8Array, count: number, modes: Uint8Array): void;

  // batched directory scanning into caller-provided regions (layout: assembly/records.ts)
  /** Opens `path` (relative to dirfd, or absolute with AT_FDCWD) for a resumable depth-first scan.
   *  flags: SCAN_* of src/core/records.ts (the xattr ones are passed to C as an xattr plan). */
  scanOpen(dirfd: number, path: ShimPath, flags: number): ScanHandle;
  /** Fills records/heap on the libuv pool; calls back once with the batch. */
  scanNext(handle: ScanHandle, records: Uint8Array, heap: Uint8Array,
           callback: (err: ShimError | null, batch: ScanBatch) => void): void;
  scanNextSync(handle: ScanHandle, records: Uint8Array, heap: Uint8Array): ScanBatch;
  /** Closes every fd the scan holds; idempotent. */
  scanClose(handle: ScanHandle): void;
  /** fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) for `count` NUL-terminated names packed in `names`,
   *  one record each, in order (nameOff points into `names`); extras go to heap, packed one after another
   *  in record order (a record's extra starts at the sum of the earlier records' extraLen). A name that
   *  cannot be stat'ed gives mode 0, FLAG_FAILED, nlink = its errno. Returns heap bytes used. flags: the
   *  SCAN_* xattr bits (passed to C as an xattr plan) and SCAN_SIZE_ALLOCATED; other walk bits mean nothing here. */
  lookupBatch(dirfd: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array, flags: number): number;

  // tree removal through directory fds only (see removeTree in src/layout/remove-tree.ts)
  /** Deletes `path` (relative, resolved beneath dirfd with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
   *  RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) and everything below it on the libuv pool. Every
   *  directory is opened from its parent's fd the same way: a symlink is unlinked, never followed; a
   *  mount point is not entered (EXDEV naming it, nothing below it deleted); a name that keeps changing
   *  type fails after a bounded number of attempts. A missing path is not an error. */
  removeTree(dirfd: number, path: ShimPath, callback: (err: ShimError | null) => void): void;
  removeTreeSync(dirfd: number, path: ShimPath): void;

  // applyDiff's small files: packed create records (layout in src/apply/file-batches.ts and
  // shim/apply_batch.c), each run as openat2 + write + fchown? + fchmod? + futimens + close, in order,
  // stopping at the first failure
  /** Runs the records in buf[start, end) on this thread; the failure, if any, is returned, not thrown. */
  batchRunSync(buf: Uint8Array, start: number, end: number): BatchFailure | null;
  batchRunnerOpen(): BatchRunner;
  /** Queues buf[0, end) to run on the libuv pool after every batch submitted before; returns its
   *  sequence number (1, 2, ...). The buffer must not change until the batch is done. */
  batchSubmit(runner: BatchRunner, buf: Uint8Array, end: number): number;
  /** The highest sequence number that ran, with no failure in it or before it. */
  batchDone(runner: BatchRunner): number;
  /** Blocks until batch `seq` and all before it ran; returns (and forgets) a failure: after one, the
   *  later batches were skipped and are the caller's to run. */
  batchWait(runner: BatchRunner, seq: number): BatchFailure | null;
}

// ---- argument checks ---------------------------------------------------------------------------
// One entry per export: "name:kind" for each parameter. Kinds: s (string), s? (string or null), p (a
// path: string or Uint8Array, the name's bytes), n (number), b (Uint8Array), bs (Uint8Array or
// string), bs? (that or null), f (function), h (scan handle).
const SIGNATURES: Record<keyof Shim, readonly string[]> = {
  mount: ['source:s?', 'target:s', 'fstype:s?', 'flags:n', 'data:s?'],
  mountAt: ['dir:s', 'source:s?', 'target:s', 'fstype:s?', 'flags:n', 'data:s?'],
  mountAsync: ['source:s?', 'target:s', 'fstype:s?', 'flags:n', 'data:s?', 'callback:f'],
  umount2: ['target:s', 'flags:n'],
  fsopen: ['fsname:s', 'flags:n'],
  fsconfig: ['fd:n', 'cmd:n', 'key:s?', 'value:bs?', 'aux:n'],
  fsmount: ['fd:n', 'flags:n', 'attrFlags:n'],
  moveMount: ['fromDirfd:n', 'fromPath:s', 'toDirfd:n', 'toPath:s', 'flags:n'],
  lgetxattr: ['path:p', 'name:s'],
  lsetxattr: ['path:p', 'name:s', 'value:bs', 'flags:n'],
  llistxattr: ['path:p'],
  fsetxattr: ['fd:n', 'name:s', 'value:bs', 'flags:n'],
  statfs: ['path:p'],
  direntTypes: ['path:p'],
  syncfs: ['fd:n'],
  flock: ['fd:n', 'operation:n'],
  fsxattrGet: ['fd:n'],
  fsxattrSet: ['fd:n', 'xflags:n', 'projid:n'],
  xfsQuotaSetLimit: ['device:s', 'projid:n', 'bytes:n'],
  xfsQuotaGet: ['device:s', 'projid:n'],
  vfsQuotaSetLimit: ['device:s', 'projid:n', 'bytes:n'],
  openat2: ['dirfd:n', 'path:p', 'flags:n', 'mode:n', 'resolve:n'],
  mkdirat: ['dirfd:n', 'path:p', 'mode:n'],
  mknodat: ['dirfd:n', 'path:p', 'mode:n', 'major:n', 'minor:n'],
  symlinkat: ['target:p', 'dirfd:n', 'path:p'],
  linkat: ['oldDirfd:n', 'oldPath:p', 'newDirfd:n', 'newPath:p', 'flags:n'],
  unlinkat: ['dirfd:n', 'path:p', 'flags:n'],
  renameat2: ['oldDirfd:n', 'oldPath:p', 'newDirfd:n', 'newPath:p', 'flags:n'],
  renameat2Async: ['oldDirfd:n', 'oldPath:p', 'newDirfd:n', 'newPath:p', 'flags:n', 'callback:f'],
  fchownat: ['dirfd:n', 'path:p', 'uid:n', 'gid:n', 'flags:n'],
  fchmodat: ['dirfd:n', 'path:p', 'mode:n'],
  utimensat: ['dirfd:n', 'path:p', 'atimeSec:n', 'atimeNsec:n', 'mtimeSec:n', 'mtimeNsec:n', 'flags:n'],
  fstatatModes: ['dirfd:n', 'paths:b', 'count:n', 'modes:b'],
  scanOpen: ['dirfd:n', 'path:p', 'flags:n'],
  scanNext: ['handle:h', 'records:b', 'heap:b', 'callback:f'],
  scanNextSync: ['handle:h', 'records:b', 'heap:b'],
  scanClose: ['handle:h'],
  lookupBatch: ['dirfd:n', 'names:b', 'count:n', 'records:b', 'heap:b', 'flags:n'],
  removeTree: ['dirfd:n', 'path:p', 'callback:f'],
  removeTreeSync: ['dirfd:n', 'path:p'],
  batchRunSync: ['buf:b', 'start:n', 'end:n'],
  batchRunnerOpen: [],
  batchSubmit: ['runner:r', 'buf:b', 'end:n'],
  batchDone: ['runner:r'],
  batchWait: ['runner:r', 'seq:n'],
};

const EXPECTED: Record<string, string> = {
  's': 'of type string', 's?': 'of type string or null', 'p': 'of type string or a Buffer', 'n': 'of type number', 'b': 'a Uint8Array or Buffer',
  'bs': 'of type string or a Buffer', 'bs?': 'of type string, a Buffer or null', 'f': 'a function',
  'h': 'a scan handle from scanOpen', 'r': 'a batch runner from batchRunnerOpen',
};

/** A caller's programming error, thrown before the syscall: a TypeError with Node's own argument-error
 *  codes, as Node's fs functions throw for the same mistakes. */
export class ShimArgumentError extends TypeError {
  constructor(readonly code: 'ERR_INVALID_ARG_TYPE' | 'ERR_INVALID_ARG_VALUE', message: string) {
    super(message);
    this.name = 'TypeError';
  }
}

interface Param { name: string; kind: string; base: string; nullable: boolean }

const PARAMS = Object.fromEntries(Object.entries(SIGNATURES).map(([fn, params]) => [fn, params.map((p): Param => {
  const [name, kind] = p.split(':') as [string, string];
  const nullable = kind.endsWith('?');
  return { name, kind, nullable, base: nullable ? kind.slice(0, -1) : kind };
})])) as Record<keyof Shim, Param[]>;

function checkArg(fn: string, p: Param, v: unknown): void {
  if (p.nullable && (v === null || v === undefined)) return;
  let ok: boolean;
  switch (p.base) {
    case 's': ok = typeof v === 'string'; break;
    case 'n': ok = typeof v === 'number'; break;
    case 'b': ok = v instanceof Uint8Array; break;
    case 'bs': case 'p': ok = typeof v === 'string' || v instanceof Uint8Array; break;
    case 'f': ok = typeof v === 'function'; break;
    default: ok = typeof v === 'object' && v !== null; break; // 'h', 'r': the C side checks the handle
  }
  if (!ok) throw new ShimArgumentError('ERR_INVALID_ARG_TYPE', `The "${p.name}" argument of ${fn} must be ${EXPECTED[p.kind]}`);
  // The kernel would silently see a shorter path.
  if (typeof v === 'string' && v.includes('\0')) {
    throw new ShimArgumentError('ERR_INVALID_ARG_VALUE', `The "${p.name}" argument of ${fn} must be a string without null bytes`);
  }
  if (p.base === 'p' && v instanceof Uint8Array && v.includes(0)) {
    throw new ShimArgumentError('ERR_INVALID_ARG_VALUE', `The "${p.name}" argument of ${fn} must be bytes without null bytes`);
  }
}

/** The addon's exports as loaded: scanOpen and lookupBatch take the xattr plan instead of SCAN_* xattr bits. */
type RawShim = Omit<Shim, 'scanOpen' | 'lookupBatch'> & {
  scanOpen(dirfd: number, path: ShimPath, walkFlags: number, plan: Uint8Array | null): ScanHandle;
  lookupBatch(dirfd: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array, plan: Uint8Array | null,
              walkFlags: number): number;
};

function checkArgs(fn: keyof Shim, args: ArrayLike<unknown>): void {
  const params = PARAMS[fn];
  for (let i = 0; i < params.length; i++) checkArg(fn, params[i]!, args[i]);
}

function checked(raw: RawShim): Shim {
  const out: Record<string, unknown> = {};
  for (const fn of Object.keys(SIGNATURES) as (keyof Shim)[]) {
    const call = (raw as unknown as Record<string, (...a: unknown[]) => unknown>)[fn]!;
    out[fn] = (...args: unknown[]) => {
      checkArgs(fn, args);
      return call(...args);
    };
  }
  out.scanOpen = (...args: Parameters<Shim['scanOpen']>) => {
    checkArgs('scanOpen', args);
    const [dirfd, path, flags] = args;
    return raw.scanOpen(dirfd, path, flags & WALK_FLAGS_MASK, planForScanFlags(flags));
  };
  out.lookupBatch = (...args: Parameters<Shim['lookupBatch']>) => {
    checkArgs('lookupBatch', args);
    const [dirfd, names, count, records, heap, flags] = args;
    return raw.lookupBatch(dirfd, names, count, records, heap, planForScanFlags(flags), flags & WALK_FLAGS_MASK);
  };
  return out as unknown as Shim;
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
      loaded = checked(require(c) as RawShim);
      return loaded;
    } catch (e) {
      loadError ??= e as Error;
    }
  }
  loaded = null;
  return null;
}

/** The shim, or one ERR_NOT_SUPPORTED line: what is missing and the command that fixes it. */
export function loadShim(): Shim {
  const s = tryLoadShim();
  if (s) return s;
  const platform = `linux-${process.arch}-gnu`;
  const why = (loadError?.message ?? 'not found').split('\n')[0];
  throw new Overlay2Error('ERR_NOT_SUPPORTED',
    `overlay2: the native shim is missing (no prebuilt for ${platform} loaded, none built from source: ${why}); ` +
    'install python3, make and a C compiler, then run `npm rebuild overlay2`');
}
