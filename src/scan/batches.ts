// The one host of the shim's resumable scan: batches of records, double-buffered over two slots
// (WASM regions for the core's consumers, JS Buffers for the export stream). While the consumer
// reads the batch in one slot, the shim's scanNext (on the libuv pool) fills the other. Pull-based,
// so both a push loop (stream.ts) and a pull stream (export's UpperDirSource) drive it.
import type { Shim, ScanBatch, ScanHandle, ShimPath } from '../native/shim.js';
import type { ScanSlot } from '../core/regions.js';

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
  slot: 0 | 1;
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

export class ScanBatches {
  private handle: ScanHandle | null;
  private inFlight = false;
  private readyBatch: ScanBatch | null = null;
  private readySlot: 0 | 1 = 0;
  private failure: Error | null = null;
  private finished = false;
  private idle = 0;
  private onReady: (() => void) | null = null;

  constructor(private readonly shim: Shim, dirfd: number, private readonly path: ShimPath, flags: number,
              private readonly slots: readonly [BatchSlot, BatchSlot], opts: ScanBatchesOptions = {}) {
    this.handle = shim.scanOpen(dirfd, path, flags);
    if (!opts.syncFirst) this.fill(0);
  }

  /** The next batch (the previous one's slot is refilled from now on), null at the end, or
   *  NOT_READY. Throws what the scan failed with. */
  take(): TakenBatch | null | typeof NOT_READY {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      if (this.inFlight) return NOT_READY;
      if (this.readyBatch === null) {
        if (this.finished || this.handle === null) return null;
        const s = this.slots[0];
        this.readyBatch = this.shim.scanNextSync(this.handle, s.records, s.heap); // the first batch
        this.readySlot = 0;
      }
      const batch = this.readyBatch;
      const slot = this.readySlot;
      this.readyBatch = null;
      if (batch.done) this.finished = true;
      else this.fill(slot === 0 ? 1 : 0);
      if (batch.count > 0) {
        this.idle = 0;
        return { slot, count: batch.count, heapUsed: batch.heapUsed };
      }
      if (batch.done) return null;
      if (++this.idle > 2) throw new Error(`overlay2: scanner made no progress in ${typeof this.path === 'string' ? this.path : Buffer.from(this.path).toString()}`);
    }
  }

  /** Runs `cb` once take() can make progress again (or will throw). */
  whenReady(cb: () => void): void {
    if (this.inFlight) this.onReady = cb;
    else setImmediate(cb);
  }

  ready(): Promise<void> {
    return new Promise((resolve) => this.whenReady(resolve));
  }

  /** Closes the scan. The shim's scanClose waits for a batch in flight by itself; settle() also
   *  waits for its callback, so no slot is written once it resolves. */
  close(): void {
    if (this.handle === null) return;
    const h = this.handle;
    this.handle = null;
    this.finished = true;
    this.shim.scanClose(h);
  }

  async settle(): Promise<void> {
    if (this.inFlight) await this.ready();
    this.close();
  }

  private fill(slot: 0 | 1): void {
    if (this.handle === null) return;
    const s = this.slots[slot];
    this.inFlight = true;
    this.shim.scanNext(this.handle, s.records, s.heap, (err, batch) => {
      this.inFlight = false;
      if (err) this.failure = err;
      else if (this.handle !== null) {
        this.readyBatch = batch;
        this.readySlot = slot;
      }
      const cb = this.onReady;
      this.onReady = null;
      cb?.();
    });
  }
}
