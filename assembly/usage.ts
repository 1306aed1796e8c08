// containerd's disk usage (continuity fs.DiskUsage, what the overlayfs snapshotter's Usage returns)
// over streamed records scanned with SCAN_SIZE_ALLOCATED: every entry — directory, file, symlink,
// device, whiteout — counts, each inode once per (dev, ino): inodes = the distinct inodes, size =
// Σ st_blocks * 512 over them. The same figures as GNU `du -s -B1` and `du -s --inodes`.
//
// How it differs from continuity, with the same result: continuity keeps every inode in a map; here
// only a non-directory with nlink > 1 enters the set — an inode with one link is met once in a walk,
// and a directory (never hardlinked) is visited once. The kernel's shared whiteout inode (char 0/0,
// nlink > 1) is one inode, as du counts it. The scanned root itself is not a record: the host adds it.
import { FLAG_FAILED, RECORD_SIZE } from './records';
import { recFlags, recMode, recSize, recNlink, recDev, recIno, isRealDir } from './record';
import { InodeSet, newInodeSet, inodeSetAdd } from './inode-set';

let bytes: i64 = 0;
let inodes: i64 = 0;
let linked: InodeSet = changetype<InodeSet>(0); // not size.ts's set: the two sums never share one

export function usageReset(): void {
  bytes = 0;
  inodes = 0;
  linked = newInodeSet();
}

export function usageConsume(records: usize, count: u32): void {
  for (let i: u32 = 0; i < count; i++) {
    const r = records + <usize>i * RECORD_SIZE;
    if ((recFlags(r) & FLAG_FAILED) != 0) continue;
    if (!isRealDir(recMode(r)) && recNlink(r) > 1 && !inodeSetAdd(linked, recDev(r), recIno(r))) continue;
    bytes += recSize(r);
    inodes++;
  }
}

/** Σ of the size field (st_blocks * 512 under SCAN_SIZE_ALLOCATED) over distinct inodes. */
export function usageTotal(): i64 {
  return bytes;
}

export function usageInodes(): i64 {
  return inodes;
}
