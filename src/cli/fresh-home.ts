// A home a failed CLI call made must not outlive the call: `overlay2 --home /new/dir create x --parent
// nosuch` used to leave /new/dir holding .features.json .partial .refs l. The CLI checks its
// arguments before it opens a home (src/cli/dispatch.ts); what only the open home can answer (does the
// parent exist, are there project quotas) fails after Overlay2Driver.init made the home, so a call
// that found no home, made one and failed removes it again.
//
// Why remove afterwards rather than ask first: every failure after init is covered (a missing parent,
// a quota without project quotas, a full disk, a refused mount), not only the ones a pre-check thinks
// of, and the driver stays the one place that decides what exists.
import { existsSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { removeTreeSync } from '../layout/remove-tree.js';

/** What a new, empty home holds after init: anything else (a layer another process just made) keeps it. */
const INIT_MADE = new Set(['.features.json', '.partial', '.refs', 'l']);
const REFS_MADE = new Set(['lock', '.users']);

/** The topmost directory of `home` that does not exist yet (init makes it and everything below), or
 *  null when the home exists. */
export function missingTop(home: string): string | null {
  if (existsSync(home)) return null;
  let top = home;
  for (let up = dirname(top); up !== top && !existsSync(up); up = dirname(up)) top = up;
  return top;
}

const only = (dir: string, allowed: Set<string>): boolean => {
  try {
    return readdirSync(dir).every((n) => allowed.has(n));
  } catch {
    return true; // not there
  }
};

/** Removes `top` (made by this call for `home`) when the home still holds only what init made: no
 *  layer, link, mount reference or spool. Best effort: a home that cannot be removed is left as it is. */
export function removeFreshHome(top: string, home: string): void {
  if (!existsSync(top)) return;
  if (!only(home, INIT_MADE) || !only(`${home}/l`, new Set()) || !only(`${home}/.partial`, new Set()) || !only(`${home}/.refs`, REFS_MADE)) return;
  try {
    removeTreeSync(top);
  } catch {
    // left for the user: the failure they are told about is the command's own
  }
}
