// The one host of the shim's resumable scan: batches of records, buffered over two or three slots
// (WASM regions for the core's consumers, JS Buffers for the export stream). While the consumer
// reads the batch in one slot, the shim's scanNext (on the libuv pool) fills the others — up to two
// at once, in call order: with three slots a batch's file reads (SCAN_INLINE_DATA) run beside the
// next batch's walk. Pull-based, so both a push loop (stream.ts) and a pull stream (export's
// UpperDirSource) drive it.
import type { Shim, ScanBatch, ScanHandle, ShimPath } from '../native/shim.js';
import type { ScanSlot } from '../core/regions.js';
import { RECORD_SIZE } from '../core/records.js';

/** A consumer of batches in the WASM core's scan slots (stream.ts, fallback.ts). Called once per
 *  batch, synchronously: the slot is refilled as soon as it returns. */
export type BatchConsumer = (slot: ScanSlot, count: number, heapUsed: number) => void;

/** Where one batch lands: the records and the heap their names (and extras) point into. */
export interface BatchSlot {
  records: Uint8Array;
  heap: Uint8Array;
}

/** One batch the consumer may read until its next take(). */
export interface TakenBatch {
  slot: number;
  count: number;
  heapUsed: number;
}

/** take() has nothing yet: the next batch is being filled; call whenReady() or ready(). */
export const NOT_READY = Symbol('not ready');

export interface ScanBatchesOptions {
  /** Fill the first batch synchronously at the first take() (the export stream: no round trip
   *  before the first bytes); by default it is filled on the pool right away. */
  syncFirst?: boolean;
}

/** The shim takes at most this many scanNext calls at once. */
const MAX_IN_FLIGHT = 2;
/** syncFirst: records of the first batch, filled on this thread — enough for the first bytes, few
 *  enough that this thread is soon back to framing while the pool walks (with SCAN_INLINE_DATA a
 *  record here costs this thread an open, a read and a close). */
const SYNC_FIRST_RECORDS = 64;

interface Request {
  slot: number;
  settled: boolean;
  batch: ScanBatch | null;
  error: Error | null;
}

export class ScanBatches {
  private handle: ScanHandle | null;
  /** scanNext calls in call order (at most one per slot): the shim walks them one after another
   *  on the pool, so the walk goes on into a free slot while the consumer reads another. */
  private readonly requests: Request[] = [];
  /** Slots neither handed out nor being filled. */
  private readonly free: number[] = [];
  /** The slot of the batch the last take() returned: free again at the next take(). */
  private handedOut: number | null = null;
  private failure: Error | null = null;
  private finished = false;
  private idle = 0;
  private onReady: (() => void) | null = null;

  constructor(private readonly shim: Shim, dirfd: number, private readonly path: ShimPath, flags: number,
              private readonly slots: readonly BatchSlot[], opts: ScanBatchesOptions = {}) {
    if (slots.length < 2) throw new RangeError('overlay2: a scan needs two batch slots at least');
    this.handle = shim.scanOpen(dirfd, path, flags);
    for (let k = 1; k < slots.length; k++) this.free.push(k);
    // one fill to start: a small directory ends in its first batch, and a second fill queued with it
    // would be a pool job per directory for nothing; the other slots join once a batch did not end it
    if (opts.syncFirst) this.free.unshift(0);
    else this.fill(0);
  }

  /** The next batch (the previous one's slot is refilled from now on), null at the end, or
   *  NOT_READY. Throws what the scan failed with. */
  take(): TakenBatch | null | typeof NOT_READY {
    if (this.handedOut !== null) {
      this.free.push(this.handedOut);
      this.handedOut = null;
      this.fillFree();
    }
    for (;;) {
      if (this.failure !== null) throw this.failure;
      let batch: ScanBatch;
      let slot: number;
      const head = this.requests[0];
      if (head === undefined) {
        if (this.finished || this.handle === null) return null;
        slot = this.free.shift()!; // the first batch (syncFirst)
        const s = this.slots[slot]!;
        batch = this.shim.scanNextSync(this.handle, s.records.subarray(0, SYNC_FIRST_RECORDS * RECORD_SIZE), s.heap);
      } else {
        if (!head.settled) return NOT_READY;
        this.requests.shift();
        if (head.error !== null) {
          this.failure = head.error;
          continue;
        }
        if (head.batch === null) return null; // closed while in flight
        batch = head.batch;
        slot = head.slot;
      }
      if (batch.done) this.finished = true;
      if (batch.count > 0) {
        this.idle = 0;
        this.handedOut = slot;
        this.fillFree(); // the scan goes on meanwhile
        return { slot, count: batch.count, heapUsed: batch.heapUsed };
      }
      if (batch.done) return null;
      if (++this.idle > 2) throw new Error(`overlay2: scanner made no progress in ${typeof this.path === 'string' ? this.path : Buffer.from(this.path).toString()}`);
      this.free.push(slot);
      this.fillFree();
    }
  }

  /** Runs `cb` once take() can make progress again (or will throw). */
  whenReady(cb: () => void): void {
    const head = this.requests[0];
    if (head !== undefined && !head.settled) this.onReady = cb;
    else setImmediate(cb);
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.whenReady(resolve));
  }

  /** Closes the scan. The shim's scanClose waits for batches in flight by itself; settle() also
   *  waits for their callbacks, so no slot is written once it resolves. */
  close(): void {
    if (this.handle === null) return;
    const h = this.handle;
    this.handle = null;
    this.finished = true;
    this.shim.scanClose(h);
  }

  async settle(): Promise<void> {
    this.finished = true; // no new fills
    while (this.requests.some((r) => !r.settled)) {
      await new Promise<void>((resolve) => { this.onReady = resolve; });
    }
    this.close();
  }

  /** Starts fills into free slots, as many as the shim takes at once. */
  private fillFree(): void {
    while (!this.finished && this.handle !== null && this.requests.length < MAX_IN_FLIGHT && this.free.length > 0) {
      this.fill(this.free.shift()!);
    }
  }

  private fill(slot: number): void {
    if (this.handle === null) return;
    const s = this.slots[slot]!;
    const req: Request = { slot, settled: false, batch: null, error: null };
    this.requests.push(req);
    this.shim.scanNext(this.handle, s.records, s.heap, (err, batch) => {
      req.settled = true;
      if (err) req.error = err;
      else if (this.handle !== null) req.batch = batch;
      const cb = this.onReady;
      this.onReady = null;
      cb?.();
    });
  }
}
