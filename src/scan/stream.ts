// The streaming scanner host: depth-first records of a directory tree, batch by batch, straight
// into WASM memory. Double-buffered: while the core consumes batch k from one slot, the shim's
// scanNext (on the libuv pool) fills batch k+1 into the other. JS sees counts, never entries.
// Without the shim (tryLoadShim() === null) the fast-glob fallback fills the same slots.
import { AT_FDCWD } from '../native/constants.js';
import { tryLoadShim, type Shim, type ScanBatch, type ScanHandle } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import { SCAN_STREAMS, type ScanSlot, type ScanStreamSlots } from '../core/regions.js';

/** Called once per batch, synchronously: the slot is refilled as soon as it returns. */
export type BatchConsumer = (slot: ScanSlot, count: number, heapUsed: number) => void;

export interface ScanOptions {
  /** Directory fd `path` is relative to (default AT_FDCWD: `path` absolute or cwd-relative). */
  dirfd?: number;
  /** Which of the core's scan streams to use (scans on different streams can run at once). */
  stream?: number;
  /** Use the fast-glob fallback even when the shim is built (tests compare the two). */
  fallback?: boolean;
}

export interface ScanResult {
  entries: number;
  /** 'shim', or 'fallback' (fast-glob: no xattrs, see src/scan/fallback.ts). */
  scanner: 'shim' | 'fallback';
}

function slotViews(core: Core, slot: ScanSlot): [Uint8Array, Uint8Array] {
  return [
    core.low.subarray(slot.recordsAddr, slot.recordsAddr + slot.recordsSize),
    core.low.subarray(slot.heapAddr, slot.heapAddr + slot.heapSize),
  ];
}

function nextBatch(shim: Shim, handle: ScanHandle, views: [Uint8Array, Uint8Array]): Promise<ScanBatch> {
  return new Promise((resolve, reject) => {
    shim.scanNext(handle, views[0], views[1], (err, batch) => (err ? reject(err) : resolve(batch)));
  });
}

/** Scans `path` (flags: SCAN_* of src/core/records.ts), feeding every batch to `consume`. */
export async function scanStream(core: Core, path: string, flags: number, consume: BatchConsumer,
                                 options: ScanOptions = {}): Promise<ScanResult> {
  const slots: ScanStreamSlots = SCAN_STREAMS[options.stream ?? 0]!;
  const dirfd = options.dirfd ?? AT_FDCWD;
  const shim = options.fallback ? null : tryLoadShim();
  if (!shim) {
    // loaded only here: fast-glob and its matchers cost a CLI call ~10 ms it needs only without the shim
    const { fallbackScan } = await import('./fallback.js');
    const entries = await fallbackScan(core, slots, dirfd, path, flags, consume);
    return { entries, scanner: 'fallback' };
  }
  const views = [slotViews(core, slots[0]), slotViews(core, slots[1])] as const;
  const handle = shim.scanOpen(dirfd, path, flags);
  let inFlight: Promise<ScanBatch> | null = null;
  let entries = 0;
  let idle = 0;
  try {
    let filling = 0;
    inFlight = nextBatch(shim, handle, views[0]);
    for (;;) {
      const batch: ScanBatch = await inFlight!;
      inFlight = null;
      const ready = filling;
      if (!batch.done) {
        filling ^= 1;
        inFlight = nextBatch(shim, handle, views[filling]);
      }
      if (batch.count > 0) {
        consume(slots[ready], batch.count, batch.heapUsed);
        entries += batch.count;
        idle = 0;
      } else if (!batch.done && ++idle > 2) {
        throw new Error(`overlay2: scanner made no progress in ${path}`);
      }
      if (batch.done) break;
    }
  } finally {
    // the pool thread may still be writing into a slot with this handle: let it finish first
    if (inFlight) await inFlight.catch(() => undefined);
    shim.scanClose(handle);
  }
  return { entries, scanner: 'shim' };
}
