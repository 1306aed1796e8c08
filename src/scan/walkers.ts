// The two walkers of a shared or split scan (shim/scanner.c: SCAN_SHARED, SCAN_SPLIT), one libuv
// pool thread each, each filling its own slot of a core scan stream until it is done. Used by
// scan/unordered.ts (any order) and scan/split.ts (segments put back in walk order).
import type { Shim, ShimError, ScanBatch, ScanHandle } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import type { ScanSlot } from '../core/regions.js';
import { coreBatchSlot } from './record-view.js';
import { RECORD_SIZE } from '../core/records.js';

/** Fills slots[0] and slots[1] from `handle` at once, calling `onBatch(k, batch)` for each batch of
 *  walker k (synchronously: the walker goes on into the same slot when it returns); closes the scan
 *  and resolves once both walkers are done, after `finalCheck` (an error it returns rejects).
 *  `syncFirst` records: walk that many on this thread first (scanNextSync into slots[0]), so a small
 *  tree is done without a round trip to the pool; a bigger one goes on on both walkers. */
export function runWalkers(shim: Shim, handle: ScanHandle, core: Core, slots: readonly ScanSlot[],
                           onBatch: (k: number, batch: ScanBatch) => void, finalCheck?: () => Error | null,
                           syncFirst = 0): Promise<void> {
  if (syncFirst > 0) {
    try {
      if (walkSyncFirst(shim, handle, core, slots[0]!, onBatch, syncFirst)) {
        shim.scanClose(handle);
        const failure = finalCheck?.() ?? null;
        return failure === null ? Promise.resolve() : Promise.reject(failure);
      }
    } catch (e) {
      shim.scanClose(handle);
      return Promise.reject(e);
    }
  }
  return new Promise((resolve, reject) => {
    let running = 0;
    let failure: unknown = null;
    const fill = (k: number): void => {
      const s = coreBatchSlot(core, slots[k]!);
      shim.scanNext(handle, s.records, s.heap, (err: ShimError | null, batch) => {
        running--;
        if (err !== null) failure ??= err;
        else if (failure === null) {
          try {
            onBatch(k, batch);
            if (!batch.done) return fill(k);
          } catch (e) {
            failure = e;
          }
        }
        // a failure stops the other walker too (scanClose cancels a wait for the queue); the slot
        // it fills stays untouched only once its callback has come
        if (failure !== null || running === 0) shim.scanClose(handle);
        if (running > 0) return;
        if (failure === null) failure = finalCheck?.() ?? null;
        if (failure !== null) reject(failure);
        else resolve();
      });
      running++;
    };
    try {
      fill(0);
      fill(1);
    } catch (e) {
      failure = e;
      shim.scanClose(handle);
      if (running === 0) reject(e);
    }
  });
}

/** Up to `records` records of the walk on this thread, in batches into `slot`; true when that was the
 *  whole walk. Stops at the first batch that fills its room (a big tree: the pool walks the rest). */
function walkSyncFirst(shim: Shim, handle: ScanHandle, core: Core, slot: ScanSlot,
                       onBatch: (k: number, batch: ScanBatch) => void, records: number): boolean {
  const s = coreBatchSlot(core, slot);
  const room = s.records.subarray(0, Math.min(records * RECORD_SIZE, s.records.length));
  // a walker ends its segment, then finds nothing left: a few calls at most for a finished walk
  for (let calls = 0; calls < 4; calls++) {
    const batch = shim.scanNextSync(handle, room, s.heap);
    onBatch(0, batch);
    if (batch.done) return true;
    if (batch.count * RECORD_SIZE >= room.length) return false;
  }
  return false;
}
