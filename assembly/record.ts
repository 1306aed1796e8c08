// Typed reads of one 64-byte record (layout: ./records.ts) and the file-type predicates the
// comparison rules are written in.
import {
  OFF_INO, OFF_SIZE, OFF_MTIME_SEC, OFF_MTIME_NSEC, OFF_MODE, OFF_UID, OFF_GID, OFF_NLINK,
  OFF_DEV, OFF_RDEV, OFF_NAME_OFF, OFF_NAME_LEN, OFF_EXTRA_LEN, OFF_DEPTH, OFF_FLAGS,
  S_IFMT, S_IFDIR, S_IFCHR, FLAG_CAPS,
} from './records';

// @ts-ignore: decorator
@inline export function recIno(r: usize): u64 { return load<u64>(r, OFF_INO); }
// @ts-ignore: decorator
@inline export function recSize(r: usize): i64 { return load<i64>(r, OFF_SIZE); }
// @ts-ignore: decorator
@inline export function recMtimeSec(r: usize): i64 { return load<i64>(r, OFF_MTIME_SEC); }
// @ts-ignore: decorator
@inline export function recMtimeNsec(r: usize): u32 { return load<u32>(r, OFF_MTIME_NSEC); }
// @ts-ignore: decorator
@inline export function recMode(r: usize): u32 { return load<u32>(r, OFF_MODE); }
// @ts-ignore: decorator
@inline export function recUid(r: usize): u32 { return load<u32>(r, OFF_UID); }
// @ts-ignore: decorator
@inline export function recGid(r: usize): u32 { return load<u32>(r, OFF_GID); }
// @ts-ignore: decorator
@inline export function recNlink(r: usize): u32 { return load<u32>(r, OFF_NLINK); }
// @ts-ignore: decorator
@inline export function recDev(r: usize): u32 { return load<u32>(r, OFF_DEV); }
// @ts-ignore: decorator
@inline export function recRdev(r: usize): u32 { return load<u32>(r, OFF_RDEV); }
// @ts-ignore: decorator
@inline export function recNameOff(r: usize): u32 { return load<u32>(r, OFF_NAME_OFF); }
// @ts-ignore: decorator
@inline export function recNameLen(r: usize): u32 { return <u32>load<u16>(r, OFF_NAME_LEN); }
// @ts-ignore: decorator
@inline export function recExtraLen(r: usize): u32 { return <u32>load<u16>(r, OFF_EXTRA_LEN); }
// @ts-ignore: decorator
@inline export function recDepth(r: usize): u32 { return <u32>load<u16>(r, OFF_DEPTH); }
// @ts-ignore: decorator
@inline export function recFlags(r: usize): u32 { return <u32>load<u16>(r, OFF_FLAGS); }

// @ts-ignore: decorator
@inline export function isRealDir(mode: u32): bool { return (mode & S_IFMT) == S_IFDIR; }

/** moby's FileInfo.isDir / statDifferent test `mode & S_IFDIR != 0`: true for directories and also for
 *  block devices (060000) and sockets (140000), whose type bits include 040000. Kept on purpose. */
// @ts-ignore: decorator
@inline export function isDirLike(mode: u32): bool { return (mode & S_IFDIR) == S_IFDIR; }

/** An overlay whiteout: a character device 0/0. */
// @ts-ignore: decorator
@inline export function isWhiteout(r: usize): bool {
  return (recMode(r) & S_IFMT) == S_IFCHR && recRdev(r) == 0;
}

/** Length of the security.capability bytes that follow the name (0 when the record has none). */
// @ts-ignore: decorator
@inline export function recCapsLen(r: usize): u32 {
  return (recFlags(r) & FLAG_CAPS) != 0 ? recExtraLen(r) : 0;
}

/** moby's sameFsTimeSpec: equal seconds and (equal nanoseconds, or either side has none). */
// @ts-ignore: decorator
@inline function sameFsTime(a: usize, b: usize): bool {
  if (recMtimeSec(a) != recMtimeSec(b)) return false;
  const an = recMtimeNsec(a), bn = recMtimeNsec(b);
  return an == bn || an == 0 || bn == 0;
}

/** moby's statDifferent (pkg/archive/changes_unix.go): mode, uid, gid, rdev always; size and mtime
 *  only when the OLD entry is not dir-like. */
export function statDifferent(oldRec: usize, newRec: usize): bool {
  const oldMode = recMode(oldRec);
  if (oldMode != recMode(newRec)) return true;
  if (recUid(oldRec) != recUid(newRec)) return true;
  if (recGid(oldRec) != recGid(newRec)) return true;
  if (recRdev(oldRec) != recRdev(newRec)) return true;
  if (!isDirLike(oldMode)) {
    if (!sameFsTime(oldRec, newRec)) return true;
    if (recSize(oldRec) != recSize(newRec)) return true;
  }
  return false;
}

/** bytes.Equal of two capability values (absent == empty). */
export function capsEqual(a: usize, aLen: u32, b: usize, bLen: u32): bool {
  if (aLen != bLen) return false;
  return aLen == 0 || memory.compare(a, b, aLen) == 0;
}
