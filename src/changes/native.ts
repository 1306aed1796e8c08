// The native change list of one overlay layer: its upper (diff) dir plus lookups into the lower
// dirs, equal to changesNaive(mount(layer), mount(parent)) — moby's result without walking the
// parent. Old = merged(lowers), new = merged(upper over lowers): only upper entries (and, under
// opaque upper dirs, the old children they hide) can differ.
//
// This file does the syscalls (through the shim) and the walk; assembly/native.ts does the
// arithmetic (lookup rules, stat comparison, A/C/D, parent-C, output order). The walk goes one upper
// directory at a time: it lists the directory (non-recursive, on this thread), looks its entries up
// in the lower dirs, and the core writes the changes in output order into a chunk the walk hands
// out as soon as it is full (changesNativeStream) — so memory is bounded by the tree's depth and its
// widest directory, not by the number of changes. Per upper directory it holds one O_PATH fd per
// visible lower dir and one of the upper dir, closed when the walk leaves it, so open fds stay
// bounded by depth × (visible layers + 1).
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
  FLAG_METACOPY, FLAG_REDIRECT, SCAN_CAPS, SCAN_METACOPY, SCAN_OPAQUE, SCAN_REDIRECT, SCAN_SORTED,
  SCAN_STAT_DIRS_ONLY, SCAN_USER_XATTR, SCAN_XATTRS_DIRS_ONLY,
} from '../core/records.js';
import {
  LOOKUP_HEAP_ADDR, LOOKUP_HEAP_SIZE, LOOKUP_MAX_NAMES, LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE,
  LOOKUP_RECORDS_ADDR, LOOKUP_RECORDS_SIZE,
} from '../core/regions.js';
import type { BatchConsumer } from '../scan/stream.js';
import { listDirectory, listDirectorySync, lookupNames } from '../scan/lookup.js';

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
  /** Every entry of `dir` (not recursive), sorted, as scan batches in `core`'s slots. */
  list(core: Core, dir: number, consume: BatchConsumer): Promise<void>;
  /** The same for an upper dir, with more SCAN_* flags (UPPER_SCAN_FLAGS): the walk lists every
   *  upper dir it enters. */
  listUpper(core: Core, dir: number, flags: number, consume: BatchConsumer): Promise<void> | void;
  /** A handle of directory `name` (its exact bytes) inside `dir`. */
  openChild(dir: number, name: Buffer): number;
  close(dir: number): void;
}

export function shimAccess(shim: Shim): LowerAccess {
  return {
    lookup: (dir, names, count, records, heap, flags) => void lookupNames(shim, dir, names, count, records, heap, flags),
    list: (core, dir, consume) => listDirectory(core, dir, consume),
    listUpper: (core, dir, flags, consume) => listDirectorySync(shim, core, dir, flags, consume),
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

/** Lists, looks up and classifies the frame's upper dir (`upper` < 0: a dir-like non-directory, no
 *  dir to list) against its visible lower dirs `dirs` (absolute layer indices `layers`). */
async function fillFrame(w: Walk, layers: readonly number[], dirs: readonly number[], upper: number): Promise<void> {
  const ex = w.core.exports;
  if (upper >= 0) {
    await w.access.listUpper(w.core, upper, w.upperFlags, (slot, count) => {
      if (ex.walkListApply(slot.recordsAddr, count, slot.heapAddr) !== 0) throw new Error('overlay2: scanner records out of depth order in an upper dir listing');
    });
  }
  if (ex.walkListDone() === CORE_ERR_NEEDS_NAIVE) throw new NeedsNaive('the upper dir has a redirect or metacopy entry');
  for (let pos = 0; pos < layers.length; pos++) {
    for (;;) {
      const count = ex.nativeLookupPrepare(pos, LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE, LOOKUP_MAX_NAMES);
      if (count === 0) break;
      w.access.lookup(dirs[pos]!, w.names, count, w.records, w.heap, w.lookupFlags);
      const rc = ex.nativeLookupApply(layers[pos]!, LOOKUP_RECORDS_ADDR, count, LOOKUP_HEAP_ADDR);
      if (rc === CORE_ERR_NEEDS_NAIVE) throw new NeedsNaive('a lower dir has a redirect or metacopy entry');
      if (rc === CORE_ERR_LOOKUP) throw lookupError(w);
    }
  }
  if (w.upperLookups && upper >= 0 && layers.length > 0) {
    for (;;) {
      const count = ex.nativeUpperPrepare(LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE, LOOKUP_MAX_NAMES);
      if (count === 0) break;
      w.access.lookup(upper, w.names, count, w.records, w.heap, w.lookupFlags);
      const rc = ex.nativeUpperApply(LOOKUP_RECORDS_ADDR, count, LOOKUP_HEAP_ADDR);
      if (rc === CORE_ERR_NEEDS_NAIVE) throw new NeedsNaive('the upper dir has a redirect or metacopy entry');
      if (rc === CORE_ERR_LOOKUP) throw lookupError(w);
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

/** Walks one upper directory (a frame of the core) and everything below it, handing out the
 *  output each time the core has a chunk. Returns true when probing found a change (the walk
 *  stopped there; see assembly/native.ts). */
async function* walkDir(w: Walk, layers: readonly number[], dirs: readonly number[], upper: number): AsyncGenerator<Change[], boolean> {
  const ex = w.core.exports;
  ex.walkPush(layers.length);
  try {
    await fillFrame(w, layers, dirs, upper);
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
      const name = Buffer.from(w.core.buffer(ex.walkChildNameAddr(), ex.walkChildNameLen()));
      const words = new Uint32Array(w.core.memory.buffer);
      const at = ex.walkChildLayers() >>> 2;
      const childLayers = Array.from(words.subarray(at + 1, at + 1 + words[at]!));
      const childDirs: number[] = [];
      let childUpper = -1;
      try {
        if (ex.walkChildIsDir()) childUpper = w.access.openChild(upper, name);
        // the child's layers are a subsequence of ours, in the same (top-down) order
        let pos = 0;
        for (const layer of childLayers) {
          while (layers[pos] !== layer) pos++;
          childDirs.push(w.access.openChild(dirs[pos]!, name));
        }
        if (step === WALK_CHILD) {
          if (yield* walkDir(w, childLayers, childDirs, childUpper)) return true;
        } else {
          ex.probeBegin();
          let found = false;
          try {
            const probe = walkDir(w, childLayers, childDirs, childUpper);
            let r = await probe.next();
            while (!r.done) r = await probe.next(); // a probe writes nothing, so hands out nothing
            found = r.value;
          } finally {
            ex.probeEnd(found ? 1 : 0);
          }
        }
      } finally {
        for (const dir of childDirs) w.access.close(dir);
        if (childUpper >= 0) w.access.close(childUpper);
      }
    }
  } finally {
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
