// The naive change list (the oracle): two whole trees compared in the WASM core, exactly moby's
// archive.ChangesDirs(newRoot, oldRoot) — see assembly/naive.ts for the rules — sorted by path.
import { lstatSync } from 'node:fs';
import type { Change } from './change.js';
import { withCore } from '../core/wasm.js';
import { takeChanges } from './change-list.js';
import { SCAN_SORTED, SCAN_CAPS } from '../core/records.js';
import { scanTree } from './tree.js';

const NEW_TREE = 0;
const OLD_TREE = 1;

export interface NaiveOptions {
  /** Scan with the fast-glob fallback even when the shim is built (it sees no capabilities). */
  fallback?: boolean;
}

/** Changes that turn `oldRoot` (null: an empty tree) into `newRoot`. */
export async function changesNaive(newRoot: string, oldRoot: string | null, options: NaiveOptions = {}): Promise<Change[]> {
  return withCore(async (core) => {
    const flags = SCAN_SORTED | SCAN_CAPS;
    const fallback = options.fallback ?? false;
    // both trees at once, one scan stream each; wait for both even when one fails, so no scan is
    // still writing into this core when it goes back to the pool
    const scans = await Promise.allSettled([
      scanTree(core, NEW_TREE, newRoot, flags, { stream: 0, fallback }),
      oldRoot === null ? Promise.resolve() : scanTree(core, OLD_TREE, oldRoot, flags, { stream: 1, fallback }),
    ]);
    for (const s of scans) if (s.status === 'rejected') throw s.reason;
    const sameDevice = oldRoot !== null && lstatSync(newRoot).dev === lstatSync(oldRoot).dev;
    core.exports.naiveCompare(sameDevice ? 1 : 0);
    return takeChanges(core);
  });
}
