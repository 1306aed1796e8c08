// Mount references shared by every process using a home, like moby's RefCounter but on disk:
// HOME/.refs/<id>.json holds who holds the layer's mount, so `overlay2 mount X` twice and
// `overlay2 unmount X` once (three processes) leaves X mounted, and a library process and the CLI
// can share a home.
//   { "persistent": 2, "pids": { "4242": { "count": 1, "start": "123456" } } }
// - persistent: references that live until released (the CLI's mount/unmount: the CLI process
//   exits right after mounting, so no process can hold them);
// - pids: references held by a running process (a library user's get/put), one count per driver
//   instance. A pid that is gone — or reused: its start time differs — holds nothing: that is the
//   crash recovery; a dead holder's references drop out at the next read.
// Every read-modify-write happens under flock(HOME/.refs/lock) (the kernel drops the lock when its
// holder dies, so a crash never leaves a stale lock) and replaces the file by rename (a crash never
// leaves half a file). The lock is held over the mount that the 0→1 reference makes and the unmount
// that the 1→0 one makes (acquire's onFirst, release's onLast): no other process sees a reference
// before its mount exists, nor takes one while the last holder is unmounting (the race of issue 11:
// a second get() returned merged/ while the first was still mounting, and a put() unmounted the
// mount a get() had just counted on). remove() and create() hold it too (src/layout/layer-guard.ts).
//
// A section may await (lockedAsync): its file steps (the state file, the mount point) need the
// filesystem's journal, and while the journal commits another layer's sync they wait 50 ms to
// seconds — on the event loop every call of a service waited with them (issue #24 part 3). Within a
// process, sections take turns in one FIFO queue before the flock (two sections of one process would
// otherwise each open the lock file and the second's blocking flock would hang the event loop for
// good); across processes the flock is polled (LOCK_NB), never waited for on the event loop. The sync
// form, locked(), is for a process with no async section in flight (init's arrival and the exit's
// leaving, src/layout/home-users.ts); it throws rather than hang when one is.
import { openSync, closeSync, readFileSync, mkdirSync, existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Shim } from '../native/shim.js';
import { LOCK_EX, LOCK_NB, LOCK_UN } from '../native/constants.js';
import { isErrno } from '../errors.js';

export const REFS_DIR = '.refs';

function isOutOfSpaceErrno(e: unknown): boolean {
  return isErrno(e, 'ENOSPC') || isErrno(e, 'EDQUOT');
}

interface PidHold { count: number; start: string }
export interface RefState { persistent: number; pids: Record<string, PidHold> }

/** The start time of a process (field 22 of /proc/PID/stat), '' when it does not exist. */
export function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: count fields after the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

let ownStart: string | undefined;
function myStart(): string {
  return (ownStart ??= processStart(process.pid));
}

function empty(): RefState {
  return { persistent: 0, pids: {} };
}

/** Drops the holds of processes that are gone; returns whether anything was dropped. */
function pruneDead(state: RefState): boolean {
  let changed = false;
  for (const [pid, hold] of Object.entries(state.pids)) {
    const alive = pid === String(process.pid) ? hold.start === myStart() : processStart(Number(pid)) === hold.start;
    if (hold.count <= 0 || !alive) {
      delete state.pids[pid];
      changed = true;
    }
  }
  return changed;
}

export function totalRefs(state: RefState): number {
  return state.persistent + Object.values(state.pids).reduce((n, h) => n + h.count, 0);
}

function refsFile(home: string, id: string): string {
  return join(home, REFS_DIR, `${id}.json`);
}

function readState(home: string, id: string): RefState {
  try {
    const s = JSON.parse(readFileSync(refsFile(home, id), 'utf8')) as Partial<RefState>;
    return { persistent: Math.max(0, Number(s.persistent) || 0), pids: s.pids && typeof s.pids === 'object' ? s.pids : {} };
  } catch {
    return empty();
  }
}

async function readStateAsync(home: string, id: string): Promise<RefState> {
  try {
    const s = JSON.parse(await fsp.readFile(refsFile(home, id), 'utf8')) as Partial<RefState>;
    return { persistent: Math.max(0, Number(s.persistent) || 0), pids: s.pids && typeof s.pids === 'object' ? s.pids : {} };
  } catch {
    return empty();
  }
}

async function writeStateAsync(home: string, id: string, state: RefState): Promise<void> {
  const file = refsFile(home, id);
  if (totalRefs(state) === 0) {
    await fsp.rm(file, { force: true });
    return;
  }
  const tmp = `${file}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(state));
  await fsp.rename(tmp, file);
}

/**
 * Is the mount of layer `id` owned by a live reference (a persistent one, or a running process's)?
 * The question a stale-mount sweep asks before unmounting HOME/<id>/merged. Reads without the lock:
 * the file is only ever replaced whole.
 */
export function isMountReferenced(home: string, id: string): boolean {
  const state = readState(home, id);
  pruneDead(state);
  return totalRefs(state) > 0;
}

export type RefScope = 'process' | 'persistent';

/**
 * Who other than this process holds the layer's mount, in words ("process 4242 (node)", "2
 * references from `overlay2 mount`"), or '' when nobody does. Dead holders must already be pruned.
 */
export function otherHolders(state: RefState): string {
  const parts: string[] = [];
  for (const [pid, hold] of Object.entries(state.pids)) {
    if (pid === String(process.pid) || hold.count <= 0) continue;
    let comm = '';
    try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone since */ }
    parts.push(`process ${pid}${comm ? ` (${comm})` : ''}`);
  }
  if (state.persistent > 0) {
    parts.push(`${state.persistent} reference${state.persistent > 1 ? 's' : ''} from \`overlay2 mount\``);
  }
  return parts.join(', ');
}

/** This process's queue of sections for one home, shared by every SharedRefs (driver) on it. */
interface SectionQueue { tail: Promise<void>; pending: number }
const queues = new Map<string, SectionQueue>();

export class SharedRefs {
  private readonly queue: SectionQueue;

  constructor(private readonly shim: Shim, readonly home: string) {
    const key = join(home, REFS_DIR);
    this.queue = queues.get(key) ?? { tail: Promise.resolve(), pending: 0 };
    queues.set(key, this.queue);
  }

  /** The lock file, opened (made if need be); null where it cannot be made for want of space. */
  private openLock(): number | null {
    const dir = join(this.home, REFS_DIR);
    try {
      return openSync(join(dir, 'lock'), 'a', 0o600);
    } catch (e) {
      if (isOutOfSpaceErrno(e)) return null;
      if (!isErrno(e, 'ENOENT')) throw e;
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        return openSync(join(dir, 'lock'), 'a', 0o600);
      } catch (e2) {
        if (isOutOfSpaceErrno(e2) || (isErrno(e2, 'ENOENT') && !existsSync(dir))) return null;
        throw e2;
      }
    }
  }

  private unlock(fd: number): void {
    try { this.shim.flock(fd, LOCK_UN); } catch { /* closing releases it too */ }
    closeSync(fd);
  }

  /**
   * Runs `fn` under the home's refs lock (one per home, shared with every process using it). `fn`
   * must be synchronous, and no lockedAsync section of this process may be in flight (its flock would
   * block this one forever). Where the lock file cannot be made for want of space, no process has ever
   * taken a reference in this home (every get() makes it), and `fn` runs unlocked: a full disk must
   * not keep remove() from freeing it.
   */
  locked<T>(fn: () => T): T {
    if (this.queue.pending > 0) throw new Error(`overlay2: internal error: a synchronous refs section while ${this.queue.pending} async ones are in flight`);
    const fd = this.openLock();
    if (fd === null) return fn();
    try {
      this.shim.flock(fd, LOCK_EX);
      return fn();
    } finally {
      this.unlock(fd);
    }
  }

  /** locked() for a section that may await: this process's sections take turns, other processes' are waited for by polling. */
  async lockedAsync<T>(fn: () => T | Promise<T>): Promise<T> {
    const q = this.queue;
    const before = q.tail;
    let done!: () => void;
    q.tail = new Promise<void>((resolve) => { done = resolve; });
    q.pending++;
    try {
      await before;
      const fd = this.openLock();
      if (fd === null) return await fn();
      try {
        for (let wait = 1; ; wait = Math.min(wait * 2, 16)) {
          try {
            this.shim.flock(fd, LOCK_EX | LOCK_NB);
            break;
          } catch (e) {
            if (!isErrno(e, 'EWOULDBLOCK') && !isErrno(e, 'EAGAIN')) throw e;
          }
          await new Promise((r) => setTimeout(r, wait));
        }
        return await fn();
      } finally {
        this.unlock(fd);
      }
    } finally {
      q.pending--;
      done();
    }
  }

  /** update() as a section that may await: the state is read and saved off the event loop. */
  updateAsync<T>(id: string, fn: (state: RefState) => T | Promise<T>): Promise<T> {
    return this.lockedAsync(async () => {
      const state = await readStateAsync(this.home, id);
      pruneDead(state);
      const result = await fn(state);
      await writeStateAsync(this.home, id, state);
      return result;
    });
  }

  /**
   * Adds one reference; returns the total before it. `onFirst` runs (under the lock) when there was
   * none — the mount, made off the event loop; when it throws, no reference is added.
   */
  acquireAsync(id: string, scope: RefScope, onFirst?: () => Promise<void>): Promise<number> {
    return this.updateAsync(id, async (state) => {
      const before = totalRefs(state);
      if (before === 0) await onFirst?.();
      if (scope === 'persistent') state.persistent++;
      else {
        const key = String(process.pid);
        const hold = state.pids[key] ?? { count: 0, start: myStart() };
        hold.count++;
        state.pids[key] = hold;
      }
      return before;
    });
  }

  /**
   * Drops one reference of `scope` (a persistent release with none persistent left drops nothing;
   * `scope` null drops none: a put() without a get() only looks); returns the total after it.
   * `onLast` runs (under the lock) when none is left — the unmount; the reference is dropped even
   * when it throws (its error is thrown after the state is saved).
   */
  async releaseAsync(id: string, scope: RefScope | null, onLast?: () => Promise<void>): Promise<number> {
    let failed: { error: unknown } | null = null;
    const left = await this.updateAsync(id, async (state) => {
      if (scope === 'persistent') {
        if (state.persistent > 0) state.persistent--;
      } else if (scope === 'process') {
        const hold = state.pids[String(process.pid)];
        if (hold && --hold.count <= 0) delete state.pids[String(process.pid)];
      }
      const total = totalRefs(state);
      if (total === 0 && onLast) {
        try { await onLast(); } catch (error) { failed = { error }; }
      }
      return total;
    });
    if (failed) throw (failed as { error: unknown }).error;
    return left;
  }

  /** Forgets every reference in the home, as a section that may await (a service's cleanup while calls are in flight). */
  async forgetAllAsync(): Promise<void> {
    let names: string[] = [];
    try { names = await fsp.readdir(join(this.home, REFS_DIR)); } catch { return; }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      await this.updateAsync(n.slice(0, -'.json'.length), (state) => {
        state.persistent = 0;
        state.pids = {};
      });
    }
  }
}
