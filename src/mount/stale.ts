// Mounts a crashed process left behind. A process killed (-9) while it held a layer mounted leaves
// the overlay at HOME/<id>/merged with nobody to put() it; moby's RefCounter adopts such a mount as
// one reference, so the next get()+put() left it in place — and mounts stacked there by repeated
// crashes stayed forever (65 of them in one run).
//
// The rule: a get() that finds no live reference to the layer (the shared reference records of
// mount/shared-refs.ts drop the holders whose process is gone) treats every overlay mounted at its
// merged dir as stale, unmounts all of them (every stacked copy), and mounts the layer afresh — with
// the options this driver would use now, not whatever the crashed process used.
import { readMountInfo } from './mountinfo.js';
import type { Shim } from '../native/shim.js';
import { MNT_DETACH } from '../native/constants.js';

/** How many overlay mounts are stacked at `path` in this mount namespace. */
export function overlayMountsAt(path: string): number {
  return readMountInfo().filter((m) => m.point === path && m.fstype === 'overlay').length;
}

/** Unmounts every overlay stacked at `mergedDir`, which no live reference holds; returns how many. */
export function unmountStale(shim: Shim, mergedDir: string): number {
  const stacked = overlayMountsAt(mergedDir);
  let removed = 0;
  for (let i = 0; i < stacked; i++) {
    try {
      shim.umount2(mergedDir, MNT_DETACH);
      removed++;
    } catch {
      break; // raced with another unmount: nothing left
    }
  }
  return removed;
}
