// The small regular files of an import, created in batches on two threads. The extractor (apply.ts)
// packs each small file (parent dir fd, name, mode, owner, times, bytes) into a batch; a full batch
// runs either on the libuv pool (shim batchSubmit: one pool thread drains the batches in submission
// order) or right here on the main thread, whichever keeps both threads busy, while the main thread
// goes on parsing. ext4 creates in one directory serialize on the directory's lock, so the two
// threads gain only when they work in different directories: batches are cut where the parent
// directory changes, and a batch runs here only when no batch on the pool has a directory in common
// with it (then their creates cannot depend on each other).
//
// Ordering, the rules the extractor keeps (see its settle* calls):
//   - A batch holds only new small files in directories that already exist; everything else runs on
//     the main thread, after settleDir(parent) (no batch pending or on the pool creates in that
//     directory) or settleAll() (none at all: hardlinks, whiteouts, replacements, the end).
//   - A file whose own path is a cached directory is never batched (it replaces that directory,
//     whose children may be in other batches).
//   - A directory fd is closed only after settleAll() (a batch refers to directories by fd).
// A failed op stops its batch (and, on the pool, every later queued batch): its creates are redone
// here, in order, after the failure was dealt with. EEXIST on the create goes to `onExists` (the
// extractor makes room, as it does for an entry it creates itself) and the op is retried once; any
// other failure is thrown, annotated with the archive entry it belongs to.
import { Overlay2Error } from '../errors.js';
import type { BatchFailure, BatchRunner, Shim } from '../native/shim.js';
import { displayName } from '../util/byte-names.js';

/** Files up to this size are batched; larger ones are written from the input chunks directly. */
export const BATCHED_FILE_MAX = 64 * 1024;
/** Longer names (the kernel refuses > 255 bytes anyway) go the direct way, with its error. */
export const BATCHED_NAME_MAX = 1024;
const BATCH_BYTES = 256 * 1024;
/** At most this many batches exist (queued, being filled, free): bounds the memory to 8 MiB. */
const MAX_BATCHES = 32;
/** A batch goes to the pool while fewer than this many wait there; past it, it runs here. */
const POOL_BACKLOG = 2;
/** A batch is cut where the directory changes once it has this many files. */
const MIN_CUT = 8;
/** A smaller batch is not worth the hand-over to the pool (a wake-up costs tens of microseconds). */
const MIN_POOL_OPS = 16;

// The record layout of shim/apply_batch.c (struct batch_op): 18 little-endian 32-bit words.
const OP_HEADER = 72;
const OP_FILE = 1;
const OP_CHOWN = 1;
const OP_CHMOD = 2;
const TWO_32 = 4294967296;

class Batch {
  readonly buf: Buffer;
  readonly words: Int32Array;
  used = 0;
  count = 0;
  /** Where the file being added takes its next bytes. */
  dataPos = 0;
  lastDir = -1;
  seq = 0;
  readonly dirs = new Set<number>();
  readonly offsets: number[] = [];
  readonly entries: string[] = [];
  readonly paths: string[] = [];

  constructor() {
    const ab = new ArrayBuffer(BATCH_BYTES); // offset 0: the 8-byte alignment the records need
    this.buf = Buffer.from(ab);
    this.words = new Int32Array(ab);
  }

  reset(): void {
    this.used = this.count = this.dataPos = this.seq = 0;
    this.lastDir = -1;
    this.dirs.clear();
    this.offsets.length = this.entries.length = this.paths.length = 0;
  }
}

/** What a small file becomes (the fields of struct batch_op). */
export interface BatchedFile {
  dirFd: number;
  /** The byte string of the name in dirFd. */
  base: string;
  /** Its path beneath the root and its archive entry's name: for onExists and error messages. */
  path: string;
  entry: string;
  openFlags: number;
  createMode: number;
  resolve: number;
  /** fchown to uid/gid after the create. */
  chown: boolean;
  uid: number;
  gid: number;
  /** fchmod to chmodMode (the umask and the special bits need it). */
  chmod: boolean;
  chmodMode: number;
  atimeSec: number;
  atimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  size: number;
}

export class FileBatches {
  private readonly runner: BatchRunner;
  private building = new Batch();
  private readonly free: Batch[] = [];
  /** Submitted to the pool, oldest first. */
  private queued: Batch[] = [];
  private allocated = 1;
  private lastSeq = 0;
  /** Directory fd → how many queued batches create in it. */
  private readonly poolDirs = new Map<number, number>();
  private settling = false;
  private closed = false;

  /** `onExists(dirFd, path)`: something is in the way of a batched create: make room for it. */
  constructor(private readonly shim: Shim, private readonly onExists: (dirFd: number, path: string) => void) {
    this.runner = shim.batchRunnerOpen();
  }

  /** Starts a file; its bytes follow through data(), then end(). */
  add(f: BatchedFile): void {
    let b = this.building;
    const need = (OP_HEADER + f.base.length + f.size + 7) & ~7;
    if (b.count > 0 && (b.used + need > BATCH_BYTES || (f.dirFd !== b.lastDir && b.count >= MIN_CUT))) {
      this.seal();
      b = this.building;
    }
    const off = b.used;
    const w = b.words;
    const o = off >> 2;
    w[o] = OP_FILE;
    w[o + 1] = f.dirFd;
    w[o + 2] = f.openFlags;
    w[o + 3] = f.createMode;
    w[o + 4] = f.resolve;
    w[o + 5] = (f.chown ? OP_CHOWN : 0) | (f.chmod ? OP_CHMOD : 0);
    w[o + 6] = f.chmodMode;
    w[o + 7] = f.uid | 0;
    w[o + 8] = f.gid | 0;
    w[o + 9] = f.atimeNsec;
    setI64(w, o + 10, f.atimeSec);
    setI64(w, o + 12, f.mtimeSec);
    w[o + 14] = f.mtimeNsec;
    w[o + 15] = f.base.length;
    w[o + 16] = f.size;
    w[o + 17] = 0;
    b.buf.write(f.base, off + OP_HEADER, 'latin1');
    b.dataPos = off + OP_HEADER + f.base.length;
    b.used = off + need;
    b.count++;
    b.offsets.push(off);
    b.entries.push(f.entry);
    b.paths.push(f.path);
    b.dirs.add(f.dirFd);
    b.lastDir = f.dirFd;
  }

  data(buf: Buffer, start: number, end: number): void {
    const b = this.building;
    buf.copy(b.buf, b.dataPos, start, end);
    b.dataPos += end - start;
  }

  /** Hands over what was batched so far (the input paused: a file must not wait for the next
   *  chunk to be created). Only between files. */
  flush(): void {
    if (this.building.count > 0 && !this.settling && !this.closed) this.seal();
  }

  /** True when a batch not yet run creates in `dirFd`. */
  busy(dirFd: number): boolean {
    return this.building.dirs.has(dirFd) || this.poolDirs.has(dirFd);
  }

  /** Afterwards no batch still to run creates in `dirFd`. */
  settleDir(dirFd: number): void {
    if (this.settling || this.closed) return;
    const b = this.building;
    if (b.dirs.has(dirFd) && b.count > 0) {
      this.building = this.takeFree();
      if (this.queued.length > 0 && this.conflicts(b)) this.submit(b);
      else this.runHere(b);
    }
    if (!this.poolDirs.has(dirFd)) return;
    this.reap();
    for (let i = this.queued.length - 1; i >= 0; i--) {
      if (this.queued[i].dirs.has(dirFd)) {
        this.waitThrough(this.queued[i].seq);
        return;
      }
    }
  }

  /** Afterwards every batched file exists. */
  settleAll(): void {
    if (this.settling || this.closed) return;
    this.settling = true;
    try {
      const b = this.building;
      if (b.count > 0) {
        this.building = this.takeFree();
        if (this.queued.length > 0 && this.conflicts(b)) this.submit(b);
        else this.runHere(b);
      }
      this.drainPool();
    } finally {
      this.settling = false;
    }
  }

  /** After a failure elsewhere: waits for the pool, runs nothing more. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.queued.length > 0) this.shim.batchWait(this.runner, this.lastSeq);
    this.queued = [];
    this.poolDirs.clear();
  }

  // ---- dispatch --------------------------------------------------------------------------------

  /** Hands the batch being built to a thread and starts a new one. */
  private seal(): void {
    const next = this.takeFree();
    const b = this.building;
    this.building = next;
    this.reap();
    if (this.conflicts(b) || (this.queued.length < POOL_BACKLOG && b.count >= MIN_POOL_OPS)) this.submit(b);
    else this.runHere(b);
  }

  private conflicts(b: Batch): boolean {
    for (const d of b.dirs) if (this.poolDirs.has(d)) return true;
    return false;
  }

  private submit(b: Batch): void {
    b.seq = this.shim.batchSubmit(this.runner, b.buf, b.used);
    this.lastSeq = b.seq;
    this.queued.push(b);
    for (const d of b.dirs) this.poolDirs.set(d, (this.poolDirs.get(d) ?? 0) + 1);
  }

  private takeFree(): Batch {
    let b = this.free.pop();
    if (b) return b;
    if (this.allocated >= MAX_BATCHES && this.queued.length > 0) {
      this.waitThrough(this.queued[0].seq);
      b = this.free.pop();
      if (b) return b;
    }
    this.allocated++;
    return new Batch();
  }

  /** Moves the batches the pool finished to the free list. */
  private reap(): void {
    if (this.queued.length === 0) return;
    const done = this.shim.batchDone(this.runner);
    let n = 0;
    while (n < this.queued.length && this.queued[n].seq <= done) this.release(this.queued[n++]);
    if (n > 0) this.queued.splice(0, n);
  }

  private release(b: Batch): void {
    for (const d of b.dirs) {
      const left = this.poolDirs.get(d)! - 1;
      if (left === 0) this.poolDirs.delete(d);
      else this.poolDirs.set(d, left);
    }
    this.recycle(b);
  }

  private recycle(b: Batch): void {
    b.reset();
    this.free.push(b);
  }

  private drainPool(): void {
    if (this.queued.length > 0) this.waitThrough(this.lastSeq);
  }

  /** Waits until the pool ran batch `seq`; after a failure, redoes the failed batch and every later
   *  one here, in order. */
  private waitThrough(seq: number): void {
    const failure = this.shim.batchWait(this.runner, seq);
    if (failure === null) {
      this.reap();
      return;
    }
    // The runner waited for its queue to empty: every queued batch ran or was skipped.
    const redo = this.queued;
    this.queued = [];
    this.poolDirs.clear();
    const failedSeq = failure.seq ?? 0;
    for (let i = 0; i < redo.length; i++) {
      const b = redo[i];
      if (b.seq < failedSeq) {
        this.recycle(b);
        continue;
      }
      if (b.seq === failedSeq) {
        this.recover(b, failure.index, failure);
        this.runFrom(b, failure.index, failure.index);
      } else {
        this.runFrom(b, 0, -1);
      }
      this.recycle(b);
    }
  }

  private runHere(b: Batch): void {
    this.runFrom(b, 0, -1);
    this.recycle(b);
  }

  /** Runs ops [index, count) on this thread; `retried` is the op already given room once. */
  private runFrom(b: Batch, index: number, retried: number): void {
    while (index < b.count) {
      const failure = this.shim.batchRunSync(b.buf, b.offsets[index], b.used);
      if (failure === null) return;
      const at = index + failure.index;
      if (at === retried) throw this.entryError(failure, b.entries[at]);
      this.recover(b, at, failure);
      retried = at;
      index = at;
    }
  }

  /** Deals with the failure of op `at` so that it can be run again, or throws. */
  private recover(b: Batch, at: number, failure: BatchFailure): void {
    if (failure.code !== 'EEXIST' || failure.syscall !== 'openat2') throw this.entryError(failure, b.entries[at]);
    const wasSettling = this.settling;
    this.settling = true; // the batches not yet run come later in the archive: they stay where they are
    try {
      this.drainPool();
      this.onExists(b.words[(b.offsets[at] >> 2) + 1], b.paths[at]);
    } catch (err) {
      throw this.entryError(err, b.entries[at]);
    } finally {
      this.settling = wasSettling;
    }
  }

  /** Names the archive entry a system error belongs to (applyFailure words it). */
  private entryError(err: unknown, entry: string): unknown {
    if (err instanceof Overlay2Error || !(err instanceof Error)) return err;
    const e = err as Error & { entry?: string };
    if (e.entry === undefined) e.entry = displayName(entry);
    return e;
  }
}

function setI64(w: Int32Array, i: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  w[i] = (v - hi * TWO_32) | 0;
  w[i + 1] = hi;
}
