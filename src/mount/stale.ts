// Mounts a crashed process left behind. A process killed (-9) while it held a layer mounted leaves
// the overlay at HOME/<id>/merged with nobody to put() it; moby's RefCounter adopts such a mount as
// one reference, so the next get()+put() left it in place — and mounts stacked there by repeated
// crashes stayed forever (65 of them in one run).
//
// The rule: the first time a driver uses a layer's merged dir (its first get()), overlay mounts
// found there are stale unless something live holds them: a driver instance of this process with a
// reference on the path, or (the hook below) a reference record of another live process. Stale
// mounts are all unmounted (every stacked copy) before the layer is mounted afresh. The sweep is on
// first use, not at init, so that a CLI `mount ID` followed by any other command (`ls`, `status`)
// keeps its mount: only a new get() of the same layer replaces it, with the same tree.
import { readFileSync } from 'node:fs';
import type { Shim } from '../native/shim.js';
import { MNT_DETACH } from '../native/constants.js';

export interface ReferenceHolder {
  count(path: string): number;
}

const holders = new Set<WeakRef<ReferenceHolder>>();

/** Each driver instance registers its reference counts: a sibling's mount is never stale. */
export function registerReferenceHolder(h: ReferenceHolder): void {
  holders.add(new WeakRef(h));
}

/**
 * References that outlive one process (mount references shared between CLI processes, kept in the
 * home): true when a live process holds `mergedDir`. This branch keeps no such records, so none;
 * the shared-reference store plugs in here.
 */
export let heldByLiveProcess: (mergedDir: string) => boolean = () => false;

export function setLiveReferenceCheck(check: (mergedDir: string) => boolean): void {
  heldByLiveProcess = check;
}

function heldInThisProcess(path: string, self: ReferenceHolder): boolean {
  for (const ref of holders) {
    const h = ref.deref();
    if (!h) {
      holders.delete(ref);
      continue;
    }
    if (h !== self && h.count(path) > 0) return true;
  }
  return false;
}

/** How many overlay mounts are stacked at `path` in this mount namespace. */
export function overlayMountsAt(path: string): number {
  let n = 0;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const point = fields[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    const fstype = fields[fields.indexOf('-') + 1];
    if (point === path && fstype === 'overlay') n++;
  }
  return n;
}

/** Unmounts every stale overlay stacked at `mergedDir` (see the rule above); returns how many. */
export function sweepStaleMounts(shim: Shim, mergedDir: string, self: ReferenceHolder): number {
  const stacked = overlayMountsAt(mergedDir);
  if (stacked === 0 || heldInThisProcess(mergedDir, self) || heldByLiveProcess(mergedDir)) return 0;
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
