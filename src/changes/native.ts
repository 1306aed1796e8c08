// The native change list of one overlay layer: its upper (diff) dir plus lookups into the lower
// dirs, equal to changesNaive(mount(layer), mount(parent)) — moby's result without walking the
// parent. Old = merged(lowers), new = merged(upper over lowers): only upper entries (and, under
// opaque upper dirs, the old children they hide) can differ.
//
// This file does the syscalls (through the shim) and the walk; assembly/native.ts does the
// arithmetic (lookup rules, stat comparison, A/C/D, parent-C). Per upper directory it holds one
// O_PATH fd per visible lower dir (and one of the upper dir), closed when the walk leaves it, so open
// fds stay bounded by depth × (visible layers + 1).
//
// The upper scan stats directories and reads their xattrs (opaque, redirect, capability) but takes
// regular files, symlinks and FIFOs by their d_type alone (SCAN_STAT_DIRS_ONLY, SCAN_XATTRS_DIRS_ONLY):
// another entry's stat, capability and metacopy mark matter only when it is compared with an old
// entry, and most upper entries of a big layer are added paths (an A whatever they hold). So the walk
// reads them afterwards, by a lookup in the upper dir, for the non-directories the lower lookups
// found — an fstatat and a listxattr per added file spared.
import { closeSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import type { Change } from './change.js';
import type { LayerContext } from '../context.js';
import { loadShim, type Shim } from '../native/shim.js';
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH } from '../native/constants.js';
import { withCore, type Core, CORE_ERR_LOOKUP, CORE_ERR_NEEDS_NAIVE } from '../core/wasm.js';
import { takeChanges } from './change-list.js';
import {
  FLAG_METACOPY, FLAG_REDIRECT, SCAN_CAPS, SCAN_METACOPY, SCAN_OPAQUE, SCAN_REDIRECT, SCAN_SORTED,
  SCAN_STAT_DIRS_ONLY, SCAN_USER_XATTR, SCAN_XATTRS_DIRS_ONLY,
} from '../core/records.js';
import {
  LOOKUP_HEAP_ADDR, LOOKUP_HEAP_SIZE, LOOKUP_MAX_NAMES, LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE,
  LOOKUP_RECORDS_ADDR, LOOKUP_RECORDS_SIZE,
} from '../core/regions.js';
import type { BatchConsumer } from '../scan/stream.js';
import { listDirectory, lookupNames } from '../scan/lookup.js';
import { scanTreeSplit } from './tree.js';

/** The context's shim and userxattr (src/context.ts): which namespace overlay's xattrs are in. */
export type NativeChangesOptions = Pick<LayerContext, 'shim' | 'userxattr'>;

/** Thrown when the layer holds something only the naive comparison handles (redirects,
 *  metacopy, names the walk cannot reopen): the caller falls back to changesNaive. An internal
 *  signal, never shown to a user (the driver catches it by class). */
export class NeedsNaive extends Error {
  constructor(readonly why: string) {
    super(`overlay2: native changes not possible: ${why}`);
    this.name = 'NeedsNaive';
  }
}

const ROOT = -1;
const OPEN_DIR = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

/** How the walk reaches the lower dirs: a directory handle per visible lower dir. The shim
 *  implementation below uses O_PATH fds; unit tests answer from hand-built records. */
export interface LowerAccess {
  /** lookupNames semantics (src/scan/lookup.ts): one record per NUL-terminated name, in order. */
  lookup(dir: number, names: Uint8Array, count: number, records: Uint8Array, heap: Uint8Array, flags: number): void;
  /** Every entry of `dir` (not recursive), sorted, as scan batches in `core`'s slots. */
  list(core: Core, dir: number, consume: BatchConsumer): Promise<void>;
  /** A handle of directory `name` (its exact bytes) inside `dir`. */
  openChild(dir: number, name: Buffer): number;
  close(dir: number): void;
}

function shimAccess(shim: Shim): LowerAccess {
  return {
    lookup: (dir, names, count, records, heap, flags) => void lookupNames(shim, dir, names, count, records, heap, flags),
    list: (core, dir, consume) => listDirectory(core, dir, consume),
    openChild: (dir, name) => shim.openat2(dir, name, OPEN_DIR, 0, 0),
    close: (dir) => closeSync(dir),
  };
}

interface Walk {
  core: Core;
  access: LowerAccess;
  lookupFlags: number;
  names: Uint8Array;
  records: Uint8Array;
  heap: Uint8Array;
}

/** Child `node`'s name for openat: its bytes, copied out of the core (a name is bytes, UTF-8 or not). */
function childName(w: Walk, node: number): Buffer {
  const ex = w.core.exports;
  return Buffer.from(w.core.buffer(ex.treeNameAddr(0, node), ex.treeNameLen(0, node)));
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

/** The frame's upper dir, opened on first use (most frames need no lookup in it; a dir-like
 *  non-directory is no dir to open, and has no children to look up). */
class UpperDir {
  private fd = -1;
  constructor(private readonly open: () => number) {}
  handle(): number {
    if (this.fd < 0) this.fd = this.open();
    return this.fd;
  }
  close(access: LowerAccess): void {
    if (this.fd >= 0) access.close(this.fd);
    this.fd = -1;
  }
}

/** `upper`: the frame's upper dir when the upper entries' stat and xattrs are read by lookups there
 *  (see the top), else null. */
async function walkDir(w: Walk, node: number, layers: readonly number[], dirs: readonly number[], upper: UpperDir | null): Promise<void> {
  try {
    await walkFrame(w, node, layers, dirs, upper);
  } finally {
    upper?.close(w.access);
  }
}

async function walkFrame(w: Walk, node: number, layers: readonly number[], dirs: readonly number[], upper: UpperDir | null): Promise<void> {
  const ex = w.core.exports;
  ex.nativeBeginDir(node, layers.length);
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
  if (upper) {
    for (;;) {
      const count = ex.nativeUpperPrepare(LOOKUP_NAMES_ADDR, LOOKUP_NAMES_SIZE, LOOKUP_MAX_NAMES);
      if (count === 0) break;
      w.access.lookup(upper.handle(), w.names, count, w.records, w.heap, w.lookupFlags);
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
  const walks = ex.nativeClassify();
  if (walks > 0) {
    // copy the list out first: the next frame reuses the core's buffer
    const plan: Array<{ node: number; layers: number[] }> = [];
    const words = new Uint32Array(w.core.memory.buffer);
    let at = ex.nativeRecurseList() >>> 2;
    for (let i = 0; i < walks; i++) {
      const n = words[at + 1]!;
      plan.push({ node: words[at]!, layers: Array.from(words.subarray(at + 2, at + 2 + n)) });
      at += 2 + n;
    }
    for (const step of plan) {
      const name = childName(w, step.node);
      const childDirs: number[] = [];
      const childUpper = upper && new UpperDir(() => w.access.openChild(upper.handle(), name));
      try {
        // the child's layers are a subsequence of ours, in the same (top-down) order
        let pos = 0;
        for (const layer of step.layers) {
          while (layers[pos] !== layer) pos++;
          childDirs.push(w.access.openChild(dirs[pos]!, name));
        }
        await walkDir(w, step.node, step.layers, childDirs, childUpper);
      } finally {
        for (const dir of childDirs) w.access.close(dir);
      }
    }
  }
  ex.nativeEndDir();
}

/** Classifies the upper tree already in tree 0 of `core` against lower dirs `roots` (top first).
 *  `upperRoot`: a handle of the upper dir when the tree holds directories' xattrs only
 *  (UPPER_SCAN_FLAGS): the walk reads the others it compares there; without it, the tree's own are. */
export async function classifyUpper(core: Core, access: LowerAccess, roots: readonly number[], lookupFlags: number,
                                    upperRoot = -1): Promise<void> {
  const w: Walk = {
    core,
    access,
    lookupFlags,
    names: core.low.subarray(LOOKUP_NAMES_ADDR, LOOKUP_NAMES_ADDR + LOOKUP_NAMES_SIZE),
    records: core.low.subarray(LOOKUP_RECORDS_ADDR, LOOKUP_RECORDS_ADDR + LOOKUP_RECORDS_SIZE),
    heap: core.low.subarray(LOOKUP_HEAP_ADDR, LOOKUP_HEAP_ADDR + LOOKUP_HEAP_SIZE),
  };
  await walkFrame(w, ROOT, roots.map((_, i) => i), roots, upperRoot >= 0 ? new UpperDir(() => upperRoot) : null);
}

/** The upper scan's flags: stat and xattrs of directories (and devices) only (see the top); the
 *  others' are read by the walk, with the lookups' flags. */
const UPPER_SCAN_FLAGS = SCAN_SORTED | SCAN_OPAQUE | SCAN_CAPS | SCAN_REDIRECT | SCAN_XATTRS_DIRS_ONLY | SCAN_STAT_DIRS_ONLY;
/** A small upper (most layers) is scanned on the calling thread: no round trip to the pool, whose
 *  threads may be asleep after other work; a bigger one goes on on both walkers after these. */
const UPPER_SYNC_RECORDS = 1024;
const LOOKUP_FLAGS = SCAN_OPAQUE | SCAN_CAPS | SCAN_REDIRECT | SCAN_METACOPY;

export async function changesNative(upperDir: string, lowerDirs: string[], opts: NativeChangesOptions): Promise<Change[]> {
  const shim = opts.shim ?? (() => {
    try {
      return loadShim();
    } catch (e) {
      throw new NeedsNaive(`the shim is not built (${(e as Error).message})`);
    }
  })();
  const xattr = opts.userxattr ? SCAN_USER_XATTR : 0;
  return withCore(async (core) => {
    // the upper scan is the bulk of the work: both cores walk it (the same sorted tree as one walk)
    await scanTreeSplit(core, 0, upperDir, UPPER_SCAN_FLAGS | xattr, { syncFirst: UPPER_SYNC_RECORDS });
    if ((core.exports.treeFlagsSeen(0) & (FLAG_REDIRECT | FLAG_METACOPY)) !== 0) {
      throw new NeedsNaive(`${upperDir} has a redirect or metacopy entry`);
    }
    const roots: number[] = [];
    let upperRoot = -1;
    try {
      for (const dir of lowerDirs) roots.push(shim.openat2(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0));
      upperRoot = shim.openat2(AT_FDCWD, upperDir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
      await classifyUpper(core, shimAccess(shim), roots, LOOKUP_FLAGS | xattr, upperRoot);
    } finally {
      for (const fd of roots) closeSync(fd);
      if (upperRoot >= 0) closeSync(upperRoot);
    }
    return takeChanges(core);
  });
}
