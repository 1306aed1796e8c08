// What an interrupted import left, seen without changing anything: for the read-only commands (`ls`,
// `exists`, `status`), which must not show a layer a kill -9 cut short as a normal one, and for
// `status`, which says how much space such leftovers hold. Clearing them stays with init's recover()
// (the next command that writes), which settles the same three things:
// - a staging dir (.staging-diff-<pid>-<start>-<random>) whose process is gone: an apply into the
//   layer was cut short; diff/ still holds what it held before, the staging dir the partial import;
// - an .applying marker whose process is gone: an import through a mount was cut short (init empties
//   diff/ again, or marks the layer incomplete);
// - an .incomplete marker: such an import, into a layer that already had content; refused until removed.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { STAGING_PREFIX, stagingOwnerAlive } from './staging.js';
import { APPLYING_FILE, INCOMPLETE_FILE, applyingOwnerAlive } from './marker.js';
import { presentUnder } from '../layout/present-paths.js';

const INCOMPLETE_WHY = 'an import through its mount was interrupted after it had content; remove it and create it again';

/** Why the layer in layerDir is not as its last apply would have left it, or null when nothing was
 *  cut short (an import still running is not a leftover). */
export function interruptedApply(layerDir: string): string | null {
  let names: string[];
  try {
    names = readdirSync(layerDir);
  } catch {
    return null;
  }
  if (names.includes(INCOMPLETE_FILE)) return INCOMPLETE_WHY;
  if (names.includes(APPLYING_FILE) && !applyingOwnerAlive(layerDir)) return 'an apply into it was interrupted; the next command that writes empties it again';
  if (names.some((n) => n.startsWith(STAGING_PREFIX) && !stagingOwnerAlive(n))) {
    return 'an apply into it was interrupted; it holds what it held before, and the next command that writes removes what the apply left';
  }
  return null;
}

/** interruptedApply's answer, for the layers `ids` of `home` at once, for the one leftover that outlives
 *  init's sweep (.incomplete) in a home no user of which died mid-work (src/layout/home-users.ts): one
 *  batched lookup for all of them. */
export function markedIncomplete(home: string, ids: readonly string[]): Map<string, string> {
  const marked = presentUnder(home, ids.map((id) => `${id}/${INCOMPLETE_FILE}`));
  return new Map(ids.filter((_, i) => marked[i]).map((id) => [id, INCOMPLETE_WHY]));
}

/** The directories interrupted work left in a home: dead imports' staging dirs, and what HOME/.partial
 *  holds (crashed creates, removes and load spools) when `partialIsStale` (no other live process). */
export function staleDirs(home: string, layers: string[], partialIsStale: boolean): string[] {
  const dirs: string[] = [];
  for (const id of layers) {
    let names: string[];
    try {
      names = readdirSync(join(home, id));
    } catch {
      continue;
    }
    for (const n of names) if (n.startsWith(STAGING_PREFIX) && !stagingOwnerAlive(n)) dirs.push(join(home, id, n));
  }
  if (partialIsStale) {
    try {
      for (const n of readdirSync(join(home, '.partial'))) dirs.push(join(home, '.partial', n));
    } catch {
      // no .partial
    }
  }
  return dirs;
}
