// TypeScript mirror of the record contract in assembly/records.ts (same names, same values).
// test/records.test.ts checks this file against the WASM core and against what the C scanner
// writes. Change assembly/records.ts first, then this file.

export const RECORD_VERSION = 2;
export const RECORD_SIZE = 64;

export const OFF_INO = 0;
export const OFF_SIZE = 8;
export const OFF_MTIME_SEC = 16;
export const OFF_MTIME_NSEC = 24;
export const OFF_MODE = 28;
export const OFF_UID = 32;
export const OFF_GID = 36;
export const OFF_NLINK = 40;
export const OFF_DEV = 44;
export const OFF_RDEV = 48;
export const OFF_NAME_OFF = 52;
export const OFF_NAME_LEN = 56;
export const OFF_EXTRA_LEN = 58;
export const OFF_DEPTH = 60;
export const OFF_FLAGS = 62;

export const FLAG_OPAQUE = 1;
export const FLAG_REDIRECT = 2;
export const FLAG_METACOPY = 4;
export const FLAG_CAPS = 8;
export const FLAG_FAILED = 0x8000;
/** SCAN_INLINE_DATA: the file's st_size bytes of content follow the extra in the heap. */
export const FLAG_DATA = 0x2000;

export const SCAN_SORTED = 1;
export const SCAN_OPAQUE = 2;
export const SCAN_USER_XATTR = 4;
export const SCAN_CAPS = 8;
export const SCAN_REDIRECT = 16;
export const SCAN_METACOPY = 32;
export const SCAN_NO_RECURSE = 64;
/** The record's size field holds st_blocks * 512 (bytes allocated) instead of st_size: disk usage as
 *  du and containerd's fs.DiskUsage count it (src/size/disk-usage.ts). A walk flag: the shim's walk,
 *  lookupBatch and the fallback scanner all honour it. */
export const SCAN_SIZE_ALLOCATED = 2048;

/** The whole tree in no particular order, walked by two scanNext calls at once that share out its
 *  directories (shim/records.h; not with SCAN_SORTED or SCAN_NO_RECURSE; not in the WASM core's
 *  table: only the host's unordered scan uses it). */
export const SCAN_SHARED = 128;

/** With SCAN_SORTED: the sorted walk by two scanNext calls at once, in segments of the pre-order that
 *  src/scan/split.ts puts back together (shim/records.h; not in the WASM core's table either). */
export const SCAN_SPLIT = 256;

/** Regular files, symlinks and FIFOs (by d_type) are not stat'ed: their record holds the file type
 *  alone (shim/records.h). For a caller that stats the few it needs later (src/changes/native.ts). */
export const SCAN_STAT_DIRS_ONLY = 1024;

/** With the xattr flags above: read them on directories only, every other entry comes without (a
 *  host-side bit: it shapes the xattr plan, the shim never sees it). The native change walk reads
 *  the others' only where it compares them (src/changes/native.ts). */
export const SCAN_XATTRS_DIRS_ONLY = 512;

/** Walk flags that have regular files of 1 to 2^log2 bytes read on the scan's pool thread into the
 *  batch (FLAG_DATA; shim/records.h SCAN_INLINE_DATA_LOG2). The heap must hold name + extra + data. */
export function scanInlineDataFlags(log2: number): number {
  if (!(Number.isInteger(log2) && log2 >= 1 && log2 <= 24)) throw new RangeError(`overlay2: no inline data limit 2^${log2}`);
  return log2 * (1 << 25);
}

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/** The order of assembly/layout.ts's table (recordLayoutValue(i) is the value of key i). */
export const RECORD_LAYOUT_KEYS = [
  'RECORD_VERSION', 'RECORD_SIZE', 'OFF_INO', 'OFF_SIZE', 'OFF_MTIME_SEC', 'OFF_MTIME_NSEC', 'OFF_MODE',
  'OFF_UID', 'OFF_GID', 'OFF_NLINK', 'OFF_DEV', 'OFF_RDEV', 'OFF_NAME_OFF', 'OFF_NAME_LEN',
  'OFF_EXTRA_LEN', 'OFF_DEPTH', 'OFF_FLAGS', 'FLAG_OPAQUE', 'FLAG_REDIRECT', 'FLAG_METACOPY',
  'FLAG_CAPS', 'FLAG_FAILED', 'SCAN_SORTED', 'SCAN_OPAQUE', 'SCAN_USER_XATTR', 'SCAN_CAPS',
  'SCAN_REDIRECT', 'SCAN_METACOPY', 'SCAN_NO_RECURSE', 'S_IFMT', 'S_IFSOCK', 'S_IFLNK', 'S_IFREG',
  'S_IFBLK', 'S_IFDIR', 'S_IFCHR', 'S_IFIFO', 'SCAN_SIZE_ALLOCATED',
] as const;

/** The order of assembly/layout.ts recordField(ptr, i). */
export const RECORD_FIELDS = [
  'ino', 'size', 'mtimeSec', 'mtimeNsec', 'mode', 'uid', 'gid', 'nlink', 'dev', 'rdev', 'nameOff',
  'nameLen', 'extraLen', 'depth', 'flags',
] as const;

/** One record as an object: for tests, fallbacks and debugging, never for the hot path (the host
 *  reads records through src/scan/record-view.ts). */
export interface RecordFields {
  ino: bigint;
  size: bigint;
  mtimeSec: bigint;
  mtimeNsec: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  dev: number;
  rdev: number;
  nameOff: number;
  nameLen: number;
  extraLen: number;
  depth: number;
  flags: number;
}

export function encodeRecord(bytes: Uint8Array, at: number, r: RecordFields): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset + at, RECORD_SIZE);
  v.setBigUint64(OFF_INO, r.ino, true);
  v.setBigInt64(OFF_SIZE, r.size, true);
  v.setBigInt64(OFF_MTIME_SEC, r.mtimeSec, true);
  v.setUint32(OFF_MTIME_NSEC, r.mtimeNsec, true);
  v.setUint32(OFF_MODE, r.mode, true);
  v.setUint32(OFF_UID, r.uid, true);
  v.setUint32(OFF_GID, r.gid, true);
  v.setUint32(OFF_NLINK, r.nlink, true);
  v.setUint32(OFF_DEV, r.dev, true);
  v.setUint32(OFF_RDEV, r.rdev, true);
  v.setUint32(OFF_NAME_OFF, r.nameOff, true);
  v.setUint16(OFF_NAME_LEN, r.nameLen, true);
  v.setUint16(OFF_EXTRA_LEN, r.extraLen, true);
  v.setUint16(OFF_DEPTH, r.depth, true);
  v.setUint16(OFF_FLAGS, r.flags, true);
}

/** glibc's dev_t (what Node's fs.Stats.dev holds) → the kernel's 32-bit major << 20 | minor. */
export function kernelDev(dev: bigint): number {
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return ((major << 20) | (minor & 0xfffff)) >>> 0;
}
