// Who may sweep HOME/.partial/. It holds every process's work in progress — create()'s layer being
// built, remove()'s layer being deleted, load()'s spooled stream — and a read-write init used to
// delete all of it, including what another live process was building at that moment (a load reading
// stdin lost its spool; a create failed with a raw ENOENT). Now every process with a read-write
// driver on the home holds a shared flock on HOME/.refs/users.lock for as long as it lives (the
// kernel drops it when the process dies), and init sweeps only when it can turn that into an
// exclusive lock: no other live process uses the home. Otherwise .partial is left to a later init.
// One open file per process and home: flocks on two open files conflict even within one process.
import { openSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { Shim } from '../native/shim.js';
import { LOCK_EX, LOCK_NB, LOCK_SH } from '../native/constants.js';
import { isErrno } from '../errors.js';
import { REFS_DIR } from '../mount/shared-refs.js';

const usersLocks = new Map<string, number>();

function usersLock(home: string): number | null {
  const key = realpathSync(home);
  let fd = usersLocks.get(key);
  if (fd !== undefined) return fd;
  try {
    mkdirSync(join(home, REFS_DIR), { recursive: true, mode: 0o700 });
    fd = openSync(join(home, REFS_DIR, 'users.lock'), 'a', 0o600);
  } catch (e) {
    // a full file system: no lock to share, and init's sweep is what frees space
    if (isErrno(e, 'ENOSPC') || isErrno(e, 'EDQUOT')) return null;
    throw e;
  }
  usersLocks.set(key, fd);
  return fd;
}

/**
 * Runs `sweep` if no other live process uses `home` read-write; from then on this process counts as
 * one that does. Returns whether it swept.
 */
export function sweepIfAlone(shim: Shim, home: string, sweep: () => void): boolean {
  const fd = usersLock(home);
  if (fd === null) {
    sweep();
    return true;
  }
  let alone = false;
  try {
    shim.flock(fd, LOCK_EX | LOCK_NB);
    alone = true;
  } catch (e) {
    if (!isErrno(e, 'EAGAIN') && !isErrno(e, 'EWOULDBLOCK')) throw e;
  }
  try {
    if (alone) sweep();
  } finally {
    // (a failed conversion drops the shared lock this process held: take it again either way)
    shim.flock(fd, LOCK_SH);
  }
  return alone;
}
