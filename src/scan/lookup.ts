// The lookups of the native change walk (src/changes/native.ts) into lower dirs: batched fstatat of
// named entries, and the listing of one directory, both as scan records.
import type { LookupJob, Shim, ScanBatch, ScanHandle } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_NO_RECURSE, SCAN_SORTED, SCAN_STAT_DIRS_ONLY } from '../core/records.js';
import { SCAN_STREAMS, type ScanSlot } from '../core/regions.js';
import { scanStream, type BatchConsumer } from './stream.js';

/** One record per NUL-terminated name in `names`, in order, failures inline (FLAG_FAILED); the
 *  extras (SCAN_* flags) packed in `heap`. Returns the heap bytes used. */
export function lookupNames(shim: Shim, dirfd: number, names: Uint8Array, count: number,
                            records: Uint8Array, heap: Uint8Array, flags: number): number {
  return shim.lookupBatch(dirfd, names, count, records, heap, flags);
}

/** lookupNames queued on the libuv pool: `done` resolves once the pool wrote the records (the buffers
 *  must not change until then), with the heap bytes used; take() runs them on this thread instead if
 *  the pool has not started yet (a loaded machine: no wait for a pool thread's turn) — `done` then
 *  never settles, and take() returns the heap bytes used, or null when the pool has the batch. */
export interface PoolLookup {
  done: Promise<number>;
  take(): number | null;
}

export function lookupNamesAsync(shim: Shim, dirfd: number, names: Uint8Array, count: number,
                                 records: Uint8Array, heap: Uint8Array, flags: number): PoolLookup {
  let job: LookupJob | undefined;
  const done = new Promise<number>((resolve, reject) => {
    job = shim.lookupBatchAsync(dirfd, names, count, records, heap, flags, (err, used) => (err ? reject(err) : resolve(used)));
  });
  return { done, take: () => shim.lookupBatchTake(job!) };
}

/** Every entry of the directory `dirfd` (not recursive), sorted, as scan batches in `core`'s slots:
 *  names and types (a whiteout is told by its stat: devices and directories are stat'ed, regular
 *  files, symlinks and FIFOs are not — SCAN_STAT_DIRS_ONLY). */
export async function listDirectory(core: Core, dirfd: number, consume: BatchConsumer): Promise<void> {
  await scanStream(core, '.', SCAN_SORTED | SCAN_NO_RECURSE | SCAN_STAT_DIRS_ONLY, consume, { dirfd });
}

/** The entries of the directory `dirfd` (not recursive, sorted; `flags`: more SCAN_* bits) read on
 *  this thread, batch by batch into `core`'s first scan slot: the native change walk lists every
 *  upper dir it enters, and most are small — a round trip to the pool per directory would cost more
 *  than the listing (a batch is one slot, so a call blocks for one batch at a time at most). */
export function listDirectorySync(shim: Shim, core: Core, dirfd: number, flags: number, consume: BatchConsumer): void {
  const slot = SCAN_STREAMS[0][0];
  const records = core.low.subarray(slot.recordsAddr, slot.recordsAddr + slot.recordsSize);
  const heap = core.low.subarray(slot.heapAddr, slot.heapAddr + slot.heapSize);
  const handle = shim.scanOpen(dirfd, '.', flags | SCAN_SORTED | SCAN_NO_RECURSE);
  try {
    for (let idle = 0; ;) {
      const batch = shim.scanNextSync(handle, records, heap);
      if (batch.count > 0) consume(slot, batch.count, batch.heapUsed);
      if (batch.done) return;
      if (batch.count > 0) idle = 0;
      else if (++idle > 2) throw new Error('overlay2: scanner made no progress listing a directory');
    }
  } finally {
    shim.scanClose(handle);
  }
}

/** A directory's listing (as listDirectorySync's) started ahead: its first batch is filled on the
 *  libuv pool into `slot` (a region of the core's memory the caller keeps for it) while the caller
 *  does other work; take() hands the listing over later, or settle() lets it go. Either way the
 *  pool is done with the slot when it resolves, and `onSettled` runs once. */
export class ListingAhead {
  readonly #shim: Shim;
  readonly #core: Core;
  readonly #handle: ScanHandle;
  readonly #first: Promise<ScanBatch>;
  #settled = false;

  constructor(shim: Shim, core: Core, dirfd: number, flags: number, readonly slot: ScanSlot, private readonly onSettled: () => void) {
    this.#shim = shim;
    this.#core = core;
    this.#handle = shim.scanOpen(dirfd, '.', flags | SCAN_SORTED | SCAN_NO_RECURSE);
    const { records, heap } = this.#views();
    this.#first = new Promise<ScanBatch>((resolve, reject) => {
      shim.scanNext(this.#handle, records, heap, (err, batch) => (err ? reject(err) : resolve(batch)));
    });
    this.#first.catch(() => undefined); // take() or settle() answers for it
  }

  #views(): { records: Uint8Array; heap: Uint8Array } {
    const s = this.slot;
    return {
      records: this.#core.low.subarray(s.recordsAddr, s.recordsAddr + s.recordsSize),
      heap: this.#core.low.subarray(s.heapAddr, s.heapAddr + s.heapSize),
    };
  }

  /** The listing, batch by batch into the slot: the first as the pool filled it, the rest on this
   *  thread (most directories fit in one batch). */
  async take(consume: BatchConsumer): Promise<void> {
    try {
      let batch = await this.#first;
      const { records, heap } = this.#views();
      for (let idle = 0; ;) {
        if (batch.count > 0) consume(this.slot, batch.count, batch.heapUsed);
        if (batch.done) return;
        if (batch.count > 0) idle = 0;
        else if (++idle > 2) throw new Error('overlay2: scanner made no progress listing a directory');
        batch = this.#shim.scanNextSync(this.#handle, records, heap);
      }
    } finally {
      this.#finish();
    }
  }

  /** Lets the listing go (if take() did not have it): waits for the pool's batch, closes the scan. */
  async settle(): Promise<void> {
    if (this.#settled) return;
    await this.#first.catch(() => undefined);
    this.#finish();
  }

  #finish(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#shim.scanClose(this.#handle);
    this.onSettled();
  }
}
