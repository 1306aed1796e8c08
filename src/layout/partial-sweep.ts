// Who may sweep HOME/.partial/. It holds every process's work in progress — create()'s layer being
// built, remove()'s layer being deleted, load()'s spooled stream — and a read-write init used to
// delete all of it, including what another live process was building at that moment (a load reading
// stdin lost its spool; a create failed with a raw ENOENT). Now every process that opens the home
// read-write records itself in HOME/.refs/.users ({ "<pid>": "<start time>" }, under the refs
// lock, like the mount references: a process that is gone, or whose pid was reused, drops out at the
// next read), and init sweeps only when no other live process is recorded. Otherwise .partial is left
// to a later init. No file stays open (an open lock file would keep the home's file system busy).
// The sweep runs under the lock, so no other process starts work in .partial meanwhile; it is
// normally empty (leftovers exist only after a crash).
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { processStart, REFS_DIR, type SharedRefs } from '../mount/shared-refs.js';

// not "<id>.json" (ids never start with a dot): no layer's reference record can be this file
const USERS_FILE = '.users';

function readUsers(file: string): Record<string, string> {
  try {
    const users = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return users !== null && typeof users === 'object' ? users as Record<string, string> : {};
  } catch {
    return {};
  }
}

/**
 * Runs `sweep` if no other live process has opened `refs.home` read-write; records this process as
 * one that has. Returns whether it swept.
 */
export function sweepIfAlone(refs: SharedRefs, sweep: () => void): boolean {
  const file = join(refs.home, REFS_DIR, USERS_FILE);
  return refs.locked(() => {
    const users = readUsers(file);
    const me = String(process.pid);
    for (const [pid, start] of Object.entries(users)) {
      if (pid === me || processStart(Number(pid)) !== start) delete users[pid];
    }
    const alone = Object.keys(users).length === 0;
    if (alone) sweep();
    users[me] = processStart(process.pid);
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(users), { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    } catch {
      // a full file system: unrecorded, this process's work in .partial is unprotected until it has space
    }
    return alone;
  });
}

/** Whether a live process other than this one has the home open read-write (so what .partial holds
 *  may be its work in progress, not a leftover). Reads only: for the read-only `status`. */
export function otherLiveUsers(home: string): boolean {
  const users = readUsers(join(home, REFS_DIR, USERS_FILE));
  return Object.entries(users).some(([pid, start]) => pid !== String(process.pid) && processStart(Number(pid)) === start);
}
