// The two walkers of a shared or split scan (shim/scanner.c: SCAN_SHARED, SCAN_SPLIT), one libuv
// pool thread each, each filling its own slot of a core scan stream until it is done. Used by
// scan/unordered.ts (any order) and scan/split.ts (segments put back in walk order).
import type { Shim, ShimError, ScanBatch, ScanHandle } from '../native/shim.js';
import type { Core } from '../core/wasm.js';
import type { ScanSlot } from '../core/regions.js';
import { coreBatchSlot } from './record-view.js';

/** Fills slots[0] and slots[1] from `handle` at once, calling `onBatch(k, batch)` for each batch of
 *  walker k (synchronously: the walker goes on into the same slot when it returns); closes the scan
 *  and resolves once both walkers are done, after `finalCheck` (an error it returns rejects). */
export function runWalkers(shim: Shim, handle: ScanHandle, core: Core, slots: readonly ScanSlot[],
                           onBatch: (k: number, batch: ScanBatch) => void, finalCheck?: () => Error | null): Promise<void> {
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
