// moby's directory.Size over streamed records: the sum of st_size of everything that is not a
// directory, with an inode that has more than one link counted once per (dev, ino).
import { FLAG_FAILED, RECORD_SIZE } from './records';
import { recFlags, recMode, recSize, recNlink, recDev, recIno, isRealDir } from './record';
import { InodeSet, newInodeSet, inodeSetAdd, inodeSetCount } from './inode-set';

let total: i64 = 0;
let linked: InodeSet = changetype<InodeSet>(0);

export function sizeReset(): void {
  total = 0;
  linked = newInodeSet();
}

export function sizeConsume(records: usize, count: u32): void {
  for (let i: u32 = 0; i < count; i++) {
    const r = records + <usize>i * RECORD_SIZE;
    if ((recFlags(r) & FLAG_FAILED) != 0) continue;
    if (isRealDir(recMode(r))) continue;
    const size = recSize(r);
    // moby skips empty files before the inode check; every whiteout is empty, so the kernel's
    // shared whiteout inode never takes part in hardlink accounting.
    if (size == 0) continue;
    if (recNlink(r) > 1 && !inodeSetAdd(linked, recDev(r), recIno(r))) continue;
    total += size;
  }
}

export function sizeTotal(): i64 {
  return total;
}

/** Hardlinked inodes the size sum has seen (for tests: nlink 1 entries never enter the set). */
export function sizeInodeCount(): u32 {
  return inodeSetCount(linked);
}
