// Every constant of the record contract as one table, so the host can check its mirror
// (src/core/records.ts RECORD_LAYOUT_KEYS lists the same names in the same order).
import {
  RECORD_VERSION, RECORD_SIZE, OFF_INO, OFF_SIZE, OFF_MTIME_SEC, OFF_MTIME_NSEC, OFF_MODE, OFF_UID,
  OFF_GID, OFF_NLINK, OFF_DEV, OFF_RDEV, OFF_NAME_OFF, OFF_NAME_LEN, OFF_EXTRA_LEN, OFF_DEPTH,
  OFF_FLAGS, FLAG_OPAQUE, FLAG_REDIRECT, FLAG_METACOPY, FLAG_CAPS, FLAG_FAILED, SCAN_SORTED,
  SCAN_OPAQUE, SCAN_USER_XATTR, SCAN_CAPS, SCAN_REDIRECT, SCAN_METACOPY, SCAN_NO_RECURSE, S_IFMT,
  S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, SCAN_SIZE_ALLOCATED,
} from './records';
import {
  recIno, recSize, recMtimeSec, recMtimeNsec, recMode, recUid, recGid, recNlink, recDev, recRdev,
  recNameOff, recNameLen, recExtraLen, recDepth, recFlags,
} from './record';

// A switch, not a static array: the module keeps no data segment below its heap.
const COUNT: u32 = 38;

export function recordLayoutCount(): u32 {
  return COUNT;
}

export function recordLayoutValue(i: u32): u32 {
  switch (i) {
    case 0: return <u32>RECORD_VERSION;
    case 1: return <u32>RECORD_SIZE;
    case 2: return <u32>OFF_INO;
    case 3: return <u32>OFF_SIZE;
    case 4: return <u32>OFF_MTIME_SEC;
    case 5: return <u32>OFF_MTIME_NSEC;
    case 6: return <u32>OFF_MODE;
    case 7: return <u32>OFF_UID;
    case 8: return <u32>OFF_GID;
    case 9: return <u32>OFF_NLINK;
    case 10: return <u32>OFF_DEV;
    case 11: return <u32>OFF_RDEV;
    case 12: return <u32>OFF_NAME_OFF;
    case 13: return <u32>OFF_NAME_LEN;
    case 14: return <u32>OFF_EXTRA_LEN;
    case 15: return <u32>OFF_DEPTH;
    case 16: return <u32>OFF_FLAGS;
    case 17: return <u32>FLAG_OPAQUE;
    case 18: return <u32>FLAG_REDIRECT;
    case 19: return <u32>FLAG_METACOPY;
    case 20: return <u32>FLAG_CAPS;
    case 21: return <u32>FLAG_FAILED;
    case 22: return <u32>SCAN_SORTED;
    case 23: return <u32>SCAN_OPAQUE;
    case 24: return <u32>SCAN_USER_XATTR;
    case 25: return <u32>SCAN_CAPS;
    case 26: return <u32>SCAN_REDIRECT;
    case 27: return <u32>SCAN_METACOPY;
    case 28: return <u32>SCAN_NO_RECURSE;
    case 29: return <u32>S_IFMT;
    case 30: return <u32>S_IFSOCK;
    case 31: return <u32>S_IFLNK;
    case 32: return <u32>S_IFREG;
    case 33: return <u32>S_IFBLK;
    case 34: return <u32>S_IFDIR;
    case 35: return <u32>S_IFCHR;
    case 36: return <u32>S_IFIFO;
    case 37: return <u32>SCAN_SIZE_ALLOCATED;
  }
  return 0xffffffff;
}

/** Field `field` (ino, size, mtimeSec, mtimeNsec, mode, uid, gid, nlink, dev, rdev, nameOff,
 *  nameLen, extraLen, depth, flags: 0..14) of the record at `r`, decoded the way the core reads it. */
export function recordField(r: usize, field: u32): i64 {
  switch (field) {
    case 0: return <i64>recIno(r);
    case 1: return recSize(r);
    case 2: return recMtimeSec(r);
    case 3: return <i64>recMtimeNsec(r);
    case 4: return <i64>recMode(r);
    case 5: return <i64>recUid(r);
    case 6: return <i64>recGid(r);
    case 7: return <i64>recNlink(r);
    case 8: return <i64>recDev(r);
    case 9: return <i64>recRdev(r);
    case 10: return <i64>recNameOff(r);
    case 11: return <i64>recNameLen(r);
    case 12: return <i64>recExtraLen(r);
    case 13: return <i64>recDepth(r);
    case 14: return <i64>recFlags(r);
  }
  return -1;
}
