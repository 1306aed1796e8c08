// Disk usage as containerd measures it, for a snapshotter's Usage: continuity's fs.DiskUsage(ctx,
// upperDir), which the overlayfs snapshotter calls. Every entry under `dir` and `dir` itself —
// directories, files, symlinks, devices, whiteouts — each inode counted once per (dev, ino):
// inodes = the distinct inodes, size = Σ st_blocks * 512 over them. GNU `du -s -B1 DIR` and
// `du -s --inodes DIR` give the same two figures (test/disk-usage.test.ts checks them against du).
//
// The scan puts st_blocks * 512 in each record's size (SCAN_SIZE_ALLOCATED); the WASM core
// (assembly/usage.ts) sums it and counts inodes. Deliberate deviations from continuity:
// - the tree is walked unordered by two walkers (scanUnordered), not by filepath.Walk: the sum does
//   not depend on order;
// - an entry that vanishes during the walk is skipped (the shim's rule), where filepath.Walk reports
//   the lstat error; continuity ignores ENOENT too, so only the error text of other races differs;
// - a root that is not a directory is measured alone (continuity's Walk does the same), not an error.
import { lstat } from 'node:fs/promises';
import { withCore } from '../core/wasm.js';
import { SCAN_SIZE_ALLOCATED } from '../core/records.js';
import { scanStream } from '../scan/stream.js';
import { scanUnordered } from '../scan/unordered.js';
import { tryLoadShim } from '../native/shim.js';

export interface DiskUsage {
  /** Bytes allocated: Σ st_blocks * 512 over distinct inodes. */
  size: number;
  /** Distinct inodes, the root's included. */
  inodes: number;
}

export interface DiskUsageOptions {
  /** Scan with the fast-glob fallback even when the shim is built (tests compare the two). */
  fallback?: boolean;
}

export async function diskUsage(dir: string, options: DiskUsageOptions = {}): Promise<DiskUsage> {
  const root = await lstat(dir, { bigint: true });
  const own = { size: Number(root.blocks * 512n), inodes: 1 };
  if (!root.isDirectory()) return own;
  return withCore(async (core) => {
    const ex = core.exports;
    const consume = (slot: { recordsAddr: number }, count: number) => ex.usageConsume(slot.recordsAddr, count);
    if (!options.fallback && tryLoadShim()) await scanUnordered(core, dir, SCAN_SIZE_ALLOCATED, consume);
    else await scanStream(core, dir, SCAN_SIZE_ALLOCATED, consume, { fallback: true });
    return { size: own.size + Number(ex.usageTotal()), inodes: own.inodes + Number(ex.usageInodes()) };
  });
}
