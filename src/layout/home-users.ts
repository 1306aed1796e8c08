// Who uses a home read-write, and whether one of them left without finishing its work.
//
// HOME/.partial/ holds every process's work in progress — create()'s layer being built, remove()'s
// layer being deleted, load()'s spooled stream — so a read-write init may sweep it only when no other
// live process uses the home. Every process that opens the home read-write records itself in
// HOME/.refs/.users ({ "<pid>": "<start time>" }, under the refs lock, like the mount references: a
// pid reused by another process does not count).
//
// A process also takes itself out again when it exits with none of its work in flight. So a recorded
// process that is gone was killed, or exited part-way through an operation: only then can a layer dir
// hold what interrupted work leaves (a staging dir, an .applying marker, a thin apply's pending lower,
// a record's temp file) or l/ a dangling link. Init looks into every layer dir — O(layers), a
// readdir each — only then (or when the home has no record of its users at all: a home Docker wrote,
// or this project before the record existed); an init after clean exits costs the same at 10,000
// layers as at 10. No file stays open (an open lock file would keep the home's file system busy).
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { processStart, REFS_DIR, type SharedRefs } from '../mount/shared-refs.js';

// not "<id>.json" (ids never start with a dot): no layer's reference record can be this file
const USERS_FILE = '.users';

function readUsers(file: string): Record<string, string> | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const users = JSON.parse(text) as unknown;
    return users !== null && typeof users === 'object' ? users as Record<string, string> : null;
  } catch {
    return null; // torn: its writer died mid-write
  }
}

function writeUsers(file: string, users: Record<string, string>): void {
  try {
    writeFileSync(`${file}.tmp`, JSON.stringify(users), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch {
    // a full file system: unrecorded, this process's work in .partial is unprotected until it has
    // space, and its crash goes unnoticed by the next init (as it would have before the record)
  }
}

export interface Arrival {
  /** no other live process uses the home (and `sweepPartial` ran) */
  alone: boolean;
  /** a recorded user is gone without leaving, or nothing is recorded: layer dirs may hold leftovers */
  afterCrash: boolean;
}

/**
 * Records this process as a user of `refs.home`, runs `sweepPartial` if no other live process uses
 * it, and says whether one left interrupted work behind (see the top of this file).
 */
export function arrive(refs: SharedRefs, sweepPartial: () => void): Promise<Arrival> {
  const file = join(refs.home, REFS_DIR, USERS_FILE);
  // in this process's queue of refs sections: a second driver opened on the home while the first
  // has calls in flight waits its turn
  return refs.lockedAsync(() => {
    const users = readUsers(file);
    let afterCrash = users === null;
    const live: Record<string, string> = {};
    const me = String(process.pid);
    for (const [pid, start] of Object.entries(users ?? {})) {
      if (pid === me) continue;
      if (processStart(Number(pid)) === start) live[pid] = start;
      else afterCrash = true;
    }
    // a driver of this process with work in flight on the home may have it in .partial too
    const alone = Object.keys(live).length === 0 && !busyHere(refs.home);
    if (alone) sweepPartial();
    live[me] = processStart(process.pid);
    writeUsers(file, live);
    return { alone, afterCrash };
  });
}

/** What says whether a driver has work in flight (its per-layer lock table). */
export interface InFlight { readonly busy: boolean }

// The homes this process uses, each with its drivers' in-flight work (weakly: a driver dropped by
// its user must not be kept alive by this table).
const homes = new Map<string, { refs: SharedRefs; work: Set<WeakRef<InFlight>> }>();

/** Whether a driver of this process has work in flight on the home. */
function busyHere(home: string): boolean {
  return [...(homes.get(home)?.work ?? [])].some((w) => w.deref()?.busy === true);
}

function leaveAll(): void {
  for (const { refs, work } of homes.values()) {
    if (busyHere(refs.home)) continue; // stay recorded: the next init sweeps
    // a home removed meanwhile (a failed CLI call's fresh home) is not made again by the lock
    if (!existsSync(join(refs.home, REFS_DIR, USERS_FILE))) continue;
    try {
      // synchronous, at exit; a section of this process still queued means work in flight (and a throw)
      refs.locked(() => {
        const file = join(refs.home, REFS_DIR, USERS_FILE);
        const users = readUsers(file);
        if (users === null || !(String(process.pid) in users)) return;
        delete users[String(process.pid)];
        writeUsers(file, users);
      });
    } catch {
      // the home is gone or unwritable: the next init prunes this process as dead (and sweeps)
    }
  }
}

/** Takes this process out of `refs.home`'s users when it exits, unless one of its drivers then has
 *  work in flight (`process.exit` from a signal handler mid-operation, an uncaught exception). */
export function leaveAtExit(refs: SharedRefs, work: InFlight): void {
  if (homes.size === 0) process.once('exit', leaveAll);
  let entry = homes.get(refs.home);
  if (entry === undefined) homes.set(refs.home, entry = { refs, work: new Set() });
  for (const w of entry.work) if (w.deref() === undefined) entry.work.delete(w);
  entry.work.add(new WeakRef(work));
}

/** Whether a live process other than this one has the home open read-write (so what .partial holds
 *  may be its work in progress, not a leftover). Reads only: for the read-only `status`. */
export function otherLiveUsers(home: string): boolean {
  const users = readUsers(join(home, REFS_DIR, USERS_FILE)) ?? {};
  return Object.entries(users).some(([pid, start]) => pid !== String(process.pid) && processStart(Number(pid)) === start);
}

/** Whether a recorded user of the home is gone without leaving, or nothing is recorded: only then
 *  can layer dirs hold what interrupted work leaves (see the top of this file). Reads only: for the
 *  read-only `ls`, which then looks into every layer dir. */
export function leftoversPossible(home: string): boolean {
  const users = readUsers(join(home, REFS_DIR, USERS_FILE));
  return users === null || Object.entries(users).some(([pid, start]) => processStart(Number(pid)) !== start);
}
