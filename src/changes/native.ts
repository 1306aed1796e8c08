// The native change list of one overlay layer: its upper (diff) dir plus lookups into the lower
// dirs, equal to changesNaive(mount(layer), mount(parent)) — moby's result without walking the
// parent. Old = merged(lowers), new = merged(upper over lowers): only upper entries (and, under
// opaque upper dirs, the old children they hide) can differ.
//
// This file does the syscalls (through the shim) and the walk; assembly/native.ts does the
// arithmetic (lookup rules, stat comparison, A/C/D, parent-C, output order). The walk goes one upper
// directory at a time: it lists the directory (non-recursive), looks its entries up in the lower
// dirs, and the core writes the changes in output order into a chunk the walk hands out as soon as
// it is full (changesNativeStream) — so memory is bounded by the tree's depth and its widest
// directory, not by the number of changes. Per upper directory it holds one O_PATH fd per visible
// lower dir and one of the upper dir, closed when the walk leaves it (and one more upper dir's, of
// the sibling listed ahead), so open fds stay bounded by depth × (visible layers + 2).
//
// Two threads share the syscalls: a big lookup batch is looked up half on this thread, half on the
// libuv pool (lookupBatch below; this thread takes the pool's half too when no pool thread has
// started it), and the next sibling's upper dir is listed on the pool while the walk goes into the
// one before (listAhead). The core sees the same calls in the same order either way.
//
// The upper listing stats directories and reads their xattrs (opaque, redirect, capability) but
// takes regular files, symlinks and FIFOs by their d_type alone (SCAN_STAT_DIRS_ONLY,
// SCAN_XATTRS_DIRS_ONLY): another entry's stat, capability and metacopy mark matter only when it is
// compared with an old entry, and most upper entries of a big layer are added paths (an A whatever
// they hold). So the walk reads them afterwards, by a lookup in the upper dir, for the
// non-directories the lower lookups found — an fstatat and a listxattr per added file spared.
import { closeSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Change } from './change.js';
import type { LayerContext } from '../context.js';
import { loadShim, type Shim } from '../native/shim.js';
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH } from '../native/constants.js';
import {
  acquireCore, releaseCore, type Core, CORE_ERR_LOOKUP, CORE_ERR_NEEDS_NAIVE, WALK_CHILD, WALK_END, WALK_FLUSH, WALK_FOUND,
} from '../core/wasm.js';
import { readChangeList } from './change-list.js';
import { NeedsNaive } from './change-stream.js';
import {
  FLAG_METACOPY, FLAG_REDIRECT, RECORD_SIZE, SCAN_CAPS, SCAN_METACOPY, SCAN_OPAQUE, SCAN_REDIRECT, SCAN_SORTED,
  SCAN_STAT_DIRS_ONLY, SCAN_USER_XATTR, SCAN_XATTRS_DIRS_ONLY,
} from '../core/records.js';
import {
  SCAN_STREAMS, type ScanSlot, LOOKUP_HEAP_ADDR, LOOKUP_HEAP_SIZE, LOOKUP_MAX_NAMES, LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE,
  LOOKUP_RECORDS_ADDR, LOOKUP_RECORDS_SIZE,
} from '../core/regions.js';
import type { BatchConsumer } from '../scan/stream.js';
import { ListingAhead, listDirectory, listDirectorySync, lookupNames, lookupNamesAsync, type PoolLookup } from '../scan/lookup.js';
import { WALK_FLAGS_MASK } from '../native/xattr-plan.js';

export { NeedsNaive };

/** The context's shim and userxattr (src/context.ts): which namespace overlay's xattrs are in. */
export type NativeChangesOptions = Pick<LayerContext, 'shim' | 'userxattr'> & {
  /** Bytes of output per chunk handed out (default 64 KiB; tests make it small). */
  chunkBytes?: number;
};

const OPEN_DIR = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

/** How the walk reaches the lower dirs: a directory handle per visible lower dir. The shim
 *  implementation below uses O_PATH fds; unit tests answer from hand-built records. */
export interface LowerAccess {
  /** lookupNames semantics (src/scan/lookup.ts): one record per NUL-terminated name, in order. */
  lookup(dir: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array, flags: number): void;
  /** The same queued for another thread, if the access has one: the walk looks a big batch up in
   *  two parts at once, one here and one there (PoolLookup, src/scan/lookup.ts: the buffers stay put
   *  until `done`, or take() ran it here). */
  lookupAsync?(dir: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array, flags: number): PoolLookup;
  /** Every entry of `dir` (not recursive), sorted, as scan batches in `core`'s slots: the records
   *  must tell names and whiteouts, not more. */
  list(core: Core, dir: number, consume: BatchConsumer): Promise<void>;
  /** The same for an upper dir, with more SCAN_* flags (UPPER_SCAN_FLAGS): the walk lists every
   *  upper dir it enters. */
  listUpper(core: Core, dir: number, flags: number, consume: BatchConsumer): Promise<void> | void;
  /** The same started ahead on another thread, if the access has one: its first batch lands in
   *  `slot` (onSettled runs once the slot is free again), and take() hands it over later. */
  listUpperAhead?(core: Core, dir: number, flags: number, slot: ScanSlot, onSettled: () => void): UpperListing;
  /** A handle of directory `name` (its exact bytes) inside `dir`. */
  openChild(dir: number, name: Buffer): number;
  close(dir: number): void;
}

/** An upper dir's listing started ahead (LowerAccess.listUpperAhead). */
export interface UpperListing {
  take(consume: BatchConsumer): Promise<void>;
  /** Lets it go if take() did not have it; resolves once nothing writes into its slot. */
  settle(): Promise<void>;
}

export function shimAccess(shim: Shim): LowerAccess {
  return {
    lookup: (dir, names, count, records, heap, flags) => void lookupNames(shim, dir, names, count, records, heap, flags),
    lookupAsync: (dir, names, count, records, heap, flags) => lookupNamesAsync(shim, dir, names, count, records, heap, flags),
    list: (core, dir, consume) => listDirectory(core, dir, consume),
    listUpper: (core, dir, flags, consume) => listDirectorySync(shim, core, dir, flags, consume),
    listUpperAhead: (core, dir, flags, slot, onSettled) => new ListingAhead(shim, core, dir, flags, slot, onSettled),
    openChild: (dir, name) => shim.openat2(dir, name, OPEN_DIR, 0, 0),
    close: (dir) => closeSync(dir),
  };
}

interface Walk {
  core: Core;
  access: LowerAccess;
  lookupFlags: number;
  /** The upper listing's flags; when it stats and reads xattrs of directories only, the others'
   *  are read by lookups in the upper dir where they are compared. */
  upperFlags: number;
  upperLookups: boolean;
  names: Uint8Array;
  records: Uint8Array;
  heap: Uint8Array;
  /** Scan slots free for a listing ahead (the core's scan stream 1: the walk's own listings use 0). */
  aheadSlots: ScanSlot[];
}

/** An upper dir listed ahead: child `child` of the frame that started it, its handle `fd`. */
interface Ahead {
  child: number;
  fd: number;
  listing: UpperListing;
}

/** A failed lookup in a lower dir is an errno like any failed fs call: Node's shape (code, errno, syscall). */
function lookupError(w: Walk): Error {
  const errno = w.core.exports.nativeLastErrno();
  const code = getSystemErrorName(-errno);
  const err = new Error(`${code}: a lookup in a lower dir failed (errno ${errno})`) as Error & { errno: number; code: string; syscall: string };
  err.errno = -errno;
  err.code = code;
  err.syscall = 'fstatat';
  return err;
}

/** The core's output so far, as Change objects (one copy out of the core; pathBytes views it). */
function takeOutput(core: Core): Change[] {
  const ex = core.exports;
  const len = ex.streamOutputLen();
  if (len === 0) return [];
  const list = readChangeList(Buffer.from(core.buffer(ex.streamOutput(), len)));
  ex.streamOutputReset();
  return list;
}

/** A lookup batch of at least this many names is looked up in two parts at once (when the access
 *  has lookupAsync): the second on the libuv pool while this thread does the first and hands it to
 *  the core. Below it the pool's round trip costs more than the half it spares. */
const SPLIT_MIN = 64;
/** The heap's second half takes the pool part's extras (a capability is at most 24 bytes a name). */
const HEAP_HALF = LOOKUP_HEAP_SIZE >>> 1;

/** Looks the batch's `count` names (packed at LOOKUP_NAMES_ADDR) up in `dir`, handing the records
 *  to `apply(first, records, count, heap)` — the whole batch, or two parts. */
async function lookupBatch(w: Walk, dir: number, count: number, flags: number,
                           apply: (first: number, records: number, count: number, heap: number) => void): Promise<void> {
  const access = w.access;
  if (access.lookupAsync === undefined || count < SPLIT_MIN) {
    access.lookup(dir, w.names, count, w.records, w.heap, flags);
    apply(0, LOOKUP_RECORDS_ADDR, count, LOOKUP_HEAP_ADDR);
    return;
  }
  const half = count >>> 1, rest = count - half;
  let at = 0;
  for (let k = 0; k < half; k++) at = w.names.indexOf(0, at) + 1;
  const pool = access.lookupAsync(dir, w.names.subarray(at), rest, w.records.subarray(half * RECORD_SIZE), w.heap.subarray(HEAP_HALF), flags);
  let ok = false;
  try {
    access.lookup(dir, w.names, half, w.records, w.heap.subarray(0, HEAP_HALF), flags);
    apply(0, LOOKUP_RECORDS_ADDR, half, LOOKUP_HEAP_ADDR);
    ok = true;
  } finally {
    // the pool writes into the core's memory: never leave before it is done (or taken)
    if (!ok) {
      let taken: number | null = 0;
      try { taken = pool.take(); } catch { /* the failure being thrown is the one to report */ }
      if (taken === null) await pool.done.catch(() => undefined);
    }
  }
  // the pool's part, or (when no pool thread got to it yet) this thread's
  if (pool.take() === null) await pool.done;
  apply(half, LOOKUP_RECORDS_ADDR + half * RECORD_SIZE, rest, LOOKUP_HEAP_ADDR + HEAP_HALF);
}

/** Lists, looks up and classifies the frame's upper dir (`upper` < 0: a dir-like non-directory, no
 *  dir to list) against its visible lower dirs `dirs` (absolute layer indices `layers`). */
async function fillFrame(w: Walk, layers: readonly number[], dirs: readonly number[], upper: number, listed: UpperListing | null): Promise<void> {
  const ex = w.core.exports;
  if (upper >= 0) {
    const apply = (slot: ScanSlot, count: number): void => {
      if (ex.walkListApply(slot.recordsAddr, count, slot.heapAddr) !== 0) throw new Error('overlay2: scanner records out of depth order in an upper dir listing');
    };
    if (listed) await listed.take(apply);
    else await w.access.listUpper(w.core, upper, w.upperFlags, apply);
  }
  if (ex.walkListDone() === CORE_ERR_NEEDS_NAIVE) throw new NeedsNaive('the upper dir has a redirect or metacopy entry');
  for (let pos = 0; pos < layers.length; pos++) {
    const layer = layers[pos]!;
    const applyLower = (first: number, records: number, n: number, heap: number): void => {
      const rc = ex.nativeLookupApply(layer, first, records, n, heap);
      if (rc === CORE_ERR_NEEDS_NAIVE) throw new NeedsNaive('a lower dir has a redirect or metacopy entry');
      if (rc === CORE_ERR_LOOKUP) throw lookupError(w);
    };
    for (;;) {
      const count = ex.nativeLookupPrepare(pos, LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE, LOOKUP_MAX_NAMES);
      if (count === 0) break;
      // upper whiteouts' old entries: their type and stat alone (no xattrs; a regular file may come
      // by the directory's d_type, read once for a big batch: SCAN_STAT_DIRS_ONLY)
      const flags = ex.nativeLookupStatOnly() ? (w.lookupFlags & WALK_FLAGS_MASK) | SCAN_STAT_DIRS_ONLY : w.lookupFlags;
      await lookupBatch(w, dirs[pos]!, count, flags, applyLower);
    }
  }
  if (w.upperLookups && upper >= 0 && layers.length > 0) {
    const applyUpper = (first: number, records: number, n: number, heap: number): void => {
      const rc = ex.nativeUpperApply(first, records, n, heap);
      if (rc === CORE_ERR_NEEDS_NAIVE) throw new NeedsNaive('the upper dir has a redirect or metacopy entry');
      if (rc === CORE_ERR_LOOKUP) throw lookupError(w);
    };
    for (;;) {
      const count = ex.nativeUpperPrepare(LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE, LOOKUP_MAX_NAMES);
      if (count === 0) break;
      await lookupBatch(w, upper, count, w.lookupFlags, applyUpper);
    }
  }
  if (ex.nativeNeedsListing()) {
    ex.nativeListBegin();
    for (const dir of dirs) {
      ex.nativeListLayerBegin();
      await w.access.list(w.core, dir, (slot, count) => ex.nativeListApply(slot.recordsAddr, count, slot.heapAddr));
      ex.nativeListLayerEnd();
    }
    ex.nativeListFinish();
  }
  ex.nativeClassify();
}

/** Starts listing the upper dir of the frame's next child to walk (walkPeekChild) ahead, on a free
 *  slot, while the walk goes into the child before it: the listing of the next sibling runs beside
 *  this one's lookups. Null when there is none, no slot is free, or the access cannot. */
function listAhead(w: Walk, upper: number): Ahead | null {
  const access = w.access;
  if (access.listUpperAhead === undefined || w.aheadSlots.length === 0 || upper < 0) return null;
  const ex = w.core.exports;
  const child = ex.walkPeekChild();
  if (child < 0) return null;
  const name = Buffer.from(w.core.buffer(ex.walkChildNameAddrOf(child), ex.walkChildNameLenOf(child)));
  let fd: number;
  try {
    fd = access.openChild(upper, name);
  } catch {
    return null; // a hint only: the walk of the child opens it again and says what is wrong
  }
  const slot = w.aheadSlots.pop()!;
  try {
    return { child, fd, listing: access.listUpperAhead(w.core, fd, w.upperFlags, slot, () => w.aheadSlots.push(slot)) };
  } catch {
    w.aheadSlots.push(slot);
    access.close(fd);
    return null;
  }
}

/** Lets a listing ahead that no walk took go. */
async function dropAhead(w: Walk, a: Ahead): Promise<void> {
  try {
    await a.listing.settle();
  } finally {
    w.access.close(a.fd);
  }
}

/** Walks one upper directory (a frame of the core) and everything below it, handing out the
 *  output each time the core has a chunk. Returns true when probing found a change (the walk
 *  stopped there; see assembly/native.ts). `listed`: its upper dir's listing, started ahead. */
async function* walkDir(w: Walk, layers: readonly number[], dirs: readonly number[], upper: number,
                        listed: UpperListing | null = null): AsyncGenerator<Change[], boolean> {
  const ex = w.core.exports;
  ex.walkPush(layers.length);
  let ahead: Ahead | null = null;
  try {
    await fillFrame(w, layers, dirs, upper, listed);
    for (;;) {
      const step = ex.walkNext();
      if (step === WALK_END) return false;
      if (step === WALK_FOUND) return true;
      if (step === WALK_FLUSH) {
        yield takeOutput(w.core);
        continue;
      }
      // WALK_CHILD or WALK_PROBE: the child's name and visible layers, copied out before the next
      // frame reuses the core's buffers
      const index = ex.walkChild();
      let pre: Ahead | null = null;
      if (ahead !== null) {
        if (ahead.child === index) pre = ahead;
        else await dropAhead(w, ahead); // (the hint named another child)
        ahead = null;
      }
      const name = Buffer.from(w.core.buffer(ex.walkChildNameAddr(), ex.walkChildNameLen()));
      const words = new Uint32Array(w.core.memory.buffer);
      const at = ex.walkChildLayers() >>> 2;
      const childLayers = Array.from(words.subarray(at + 1, at + 1 + words[at]!));
      const childDirs: number[] = [];
      let childUpper = pre !== null ? pre.fd : -1;
      try {
        if (pre === null && ex.walkChildIsDir()) childUpper = w.access.openChild(upper, name);
        // the child's layers are a subsequence of ours, in the same (top-down) order
        let pos = 0;
        for (const layer of childLayers) {
          while (layers[pos] !== layer) pos++;
          childDirs.push(w.access.openChild(dirs[pos]!, name));
        }
        ahead = listAhead(w, upper);
        const listing = pre !== null ? pre.listing : null;
        if (step === WALK_CHILD) {
          if (yield* walkDir(w, childLayers, childDirs, childUpper, listing)) return true;
        } else {
          ex.probeBegin();
          let found = false;
          try {
            const probe = walkDir(w, childLayers, childDirs, childUpper, listing);
            let r = await probe.next();
            while (!r.done) r = await probe.next(); // a probe writes nothing, so hands out nothing
            found = r.value;
          } finally {
            ex.probeEnd(found ? 1 : 0);
          }
        }
      } finally {
        if (pre !== null) await pre.listing.settle(); // (taken by the child's walk, unless it failed first)
        for (const dir of childDirs) w.access.close(dir);
        if (childUpper >= 0) w.access.close(childUpper);
      }
    }
  } finally {
    if (ahead !== null) await dropAhead(w, ahead);
    ex.walkPop();
  }
}

export interface WalkOptions {
  /** The upper listing's SCAN_* flags (default UPPER_SCAN_FLAGS, directories' stat and xattrs only). */
  upperFlags?: number;
  /** Whether the walk reads compared non-directories' stat and xattrs by lookups in the upper dir
   *  (default: yes; a listing that already has them — a test's hand-made records — needs none). */
  upperLookups?: boolean;
  /** Bytes of output per chunk handed out (default the core's 64 KiB). */
  chunkBytes?: number;
}

/** The changes of upper dir `upperRoot` (a handle of `access`) against lower dirs `roots` (top
 *  first), in byte order, chunk by chunk. */
export async function* walkUpper(core: Core, access: LowerAccess, upperRoot: number, roots: readonly number[], lookupFlags: number,
                                 opts: WalkOptions = {}): AsyncGenerator<Change[]> {
  const w: Walk = {
    core,
    access,
    lookupFlags,
    upperFlags: opts.upperFlags ?? UPPER_SCAN_FLAGS,
    upperLookups: opts.upperLookups ?? true,
    names: core.low.subarray(LOOKUP_NAMES_ADDR, LOOKUP_NAMES_ADDR + LOOKUP_NAMES_SIZE),
    records: core.low.subarray(LOOKUP_RECORDS_ADDR, LOOKUP_RECORDS_ADDR + LOOKUP_RECORDS_SIZE),
    heap: core.low.subarray(LOOKUP_HEAP_ADDR, LOOKUP_HEAP_ADDR + LOOKUP_HEAP_SIZE),
    aheadSlots: [...SCAN_STREAMS[1]!],
  };
  if (opts.chunkBytes !== undefined) core.exports.streamChunkSize(opts.chunkBytes);
  yield* walkDir(w, roots.map((_, i) => i), roots, upperRoot);
  const last = takeOutput(core);
  if (last.length > 0) yield last;
}

/** The upper listing's flags: stat and xattrs of directories (and devices) only (see the top); the
 *  others' are read by the walk, with the lookups' flags. */
export const UPPER_SCAN_FLAGS = SCAN_SORTED | SCAN_OPAQUE | SCAN_CAPS | SCAN_REDIRECT | SCAN_XATTRS_DIRS_ONLY | SCAN_STAT_DIRS_ONLY;
export const LOOKUP_FLAGS = SCAN_OPAQUE | SCAN_CAPS | SCAN_REDIRECT | SCAN_METACOPY;

function shimOf(opts: NativeChangesOptions): Shim {
  if (opts.shim) return opts.shim;
  try {
    return loadShim();
  } catch (e) {
    throw new NeedsNaive(`the shim is not built (${(e as Error).message})`);
  }
}

/** The native change list in chunks, in byte order: memory bounded by the upper tree's depth and
 *  widest directory. Throws NeedsNaive (possibly after some chunks: the caller goes on with the
 *  naive list past what it has) when only the naive comparison can answer. */
export async function* changesNativeStream(upperDir: string, lowerDirs: string[], opts: NativeChangesOptions): AsyncGenerator<Change[]> {
  const shim = shimOf(opts);
  const xattr = opts.userxattr ? SCAN_USER_XATTR : 0;
  const core = acquireCore();
  const roots: number[] = [];
  let upperRoot = -1;
  try {
    for (const dir of lowerDirs) roots.push(shim.openat2(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0));
    upperRoot = shim.openat2(AT_FDCWD, upperDir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
    yield* walkUpper(core, shimAccess(shim), upperRoot, roots, LOOKUP_FLAGS | xattr, { upperFlags: UPPER_SCAN_FLAGS | xattr, chunkBytes: opts.chunkBytes });
  } finally {
    for (const fd of roots) closeSync(fd);
    if (upperRoot >= 0) closeSync(upperRoot);
    releaseCore(core);
  }
}

/** The whole native change list (changesNativeStream collected). */
export async function changesNative(upperDir: string, lowerDirs: string[], opts: NativeChangesOptions): Promise<Change[]> {
  const all: Change[] = [];
  for await (const chunk of changesNativeStream(upperDir, lowerDirs, opts)) {
    for (const c of chunk) all.push(c);
  }
  return all;
}
