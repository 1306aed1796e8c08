// The staging dir an import extracts into before it becomes the layer's diff/. It lives inside the
// layer dir (HOME/<id>/.staging-diff-<pid>-<start>-<random>): same filesystem as diff/ (so renameat2
// can swap them) and under the same project-quota dir; Docker ignores unknown names in a layer dir.
// The owner's pid and start time (/proc/PID/stat) tell another process's init whether the import
// is still running: only a dead owner's staging dir is a leftover.
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Shim } from '../native/shim.js';
import { RENAME_EXCHANGE } from '../native/constants.js';
import { renameOnPool } from '../native/rename-async.js';
import { removeTree } from '../layout/remove-tree.js';
import { processStart } from '../mount/shared-refs.js';

export const STAGING_PREFIX = '.staging-diff-';

// The staging dir's steps (its creation, the swap, the removal of what was diff/) are journalled: they
// run on the libuv pool, where waiting for another layer's sync holds up no other call of a service.

/** Creates an empty staging dir beside `diff`, with diff's owner and mode; returns its path. */
export async function createStaging(layerDir: string, diffDir: string): Promise<string> {
  const st = await fs.promises.lstat(diffDir);
  const random = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(6))).toString('hex');
  const path = join(layerDir, `${STAGING_PREFIX}${process.pid}-${processStart(process.pid) || '0'}-${random}`);
  await fs.promises.mkdir(path, { mode: 0o700 });
  await fs.promises.chown(path, st.uid, st.gid);
  await fs.promises.chmod(path, st.mode & 0o7777);
  return path;
}

/** Exchanges the staging dir with diff/ in one renameat2, then removes what was diff/ (now at the
 *  staging name). A crash between the two steps leaves a complete diff/ and a stale staging dir;
 *  so does a failure of the removal, which is only warned about: the layer is complete, and the
 *  next init removes stale staging dirs. */
export async function swapIntoPlace(shim: Shim, stagingDir: string, diffDir: string, warn?: (msg: string) => void): Promise<void> {
  await renameOnPool(shim, stagingDir, diffDir, RENAME_EXCHANGE);
  try {
    await removeTree(stagingDir);
  } catch (e) {
    warn?.(`overlay2: the replaced diff dir ${stagingDir} was not removed (the next init will): ${(e as Error).message}`);
  }
}

/** Whether the import that made staging dir `name` may still be running: its pid is alive with the
 *  start time in the name (a name without one, from an older version: the pid is alive). */
export function stagingOwnerAlive(name: string): boolean {
  const parts = name.slice(STAGING_PREFIX.length).split('-');
  const now = /^[1-9][0-9]*$/.test(parts[0]!) ? processStart(Number(parts[0])) : '';
  if (now === '') return false;
  return parts.length === 3 ? parts[1] === now : true;
}

/** Removes the staging dirs of dead imports in a layer dir (leftovers of interrupted imports) and
 *  leaves those of live ones; returns how many it removed. */
export async function removeStaleStaging(layerDir: string): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await fs.promises.readdir(layerDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  for (const name of names) {
    if (!name.startsWith(STAGING_PREFIX) || stagingOwnerAlive(name)) continue;
    await removeTree(join(layerDir, name), layerDir);
    removed++;
  }
  return removed;
}

/** True when the directory has no entries. */
export function isEmptyDir(dir: string): boolean {
  const d = fs.opendirSync(dir);
  try {
    return d.readSync() === null;
  } finally {
    d.closeSync();
  }
}
