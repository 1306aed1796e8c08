// A fresh ext4 on a loop device for a bench's scratch: every peer writes to the same new filesystem,
// and nothing else does. With its image in RAM (/dev/shm) the machine's disk is out of the figure too:
// on this VM's disk a 5,000-file import took 1.3 s when it came first and 6.5–8.6 s from the third
// on, whoever ran it (a write budget being spent), while on the RAM-backed ext4 every import took
// 0.76–0.94 s.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export type Ext4Backing = 'ram' | 'disk';

export interface FreshExt4 {
  dir: string;
  backing: Ext4Backing;
  /** unmounts (lazily if busy) and deletes the image */
  remove(): void;
}

/** mkfs.ext4 of a `sizeGiB` image (in /dev/shm for 'ram', beside `dir` for 'disk'), mounted at `dir`. */
export function mountFreshExt4(dir: string, sizeGiB: number, backing: Ext4Backing): FreshExt4 {
  mkdirSync(dir, { recursive: true });
  const imageDir = mkdtempSync(backing === 'ram' ? '/dev/shm/ovl2-bench-' : `${dir}-img-`);
  const image = join(imageDir, 'ext4.img');
  execFileSync('truncate', ['-s', `${sizeGiB}G`, image]);
  // initialised now, not lazily by a kernel thread writing while the bench measures
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  execFileSync('mount', ['-o', 'loop', image, dir]);
  return {
    dir,
    backing,
    remove() {
      try { execFileSync('umount', [dir], { stdio: 'ignore' }); } catch { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); }
      rmSync(imageDir, { recursive: true, force: true });
    },
  };
}

/** The backing a bench's OVERLAY2_BENCH_DISK asks for: 'ram' unless it says 'disk'. */
export function benchBacking(): Ext4Backing {
  return process.env.OVERLAY2_BENCH_DISK === 'disk' ? 'disk' : 'ram';
}
