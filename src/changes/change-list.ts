// Reads the core's sorted change list ("<kind><path>\0" per change) into Change objects.
import type { Change, ChangeKind } from './change.js';
import type { Core } from '../core/wasm.js';
import { goDisplay } from '../util/byte-names.js';

export function takeChanges(core: Core): Change[] {
  const len = core.exports.changesFinish();
  if (len === 0) return [];
  // one copy out of the core's memory; every path's bytes are a view of it
  const all = Buffer.from(core.buffer(core.exports.changesOutput(), len));
  const out: Change[] = [];
  for (let start = 0; start < len;) {
    let end = all.indexOf(0, start);
    if (end < 0) end = len;
    const pathBytes = all.subarray(start + 1, end);
    out.push({ path: goDisplay(pathBytes), kind: String.fromCharCode(all[start]!) as ChangeKind, pathBytes });
    start = end + 1;
  }
  return out;
}
