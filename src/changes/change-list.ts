// Reads the core's sorted change list ("<kind><path>\0" per change) into Change objects.
import type { Change, ChangeKind } from './change.js';
import type { Core } from '../core/wasm.js';

export function takeChanges(core: Core): Change[] {
  const len = core.exports.changesFinish();
  if (len === 0) return [];
  // one decode for the whole list: names that are not UTF-8 come back with U+FFFD, as in fs.readdir
  const text = core.buffer(core.exports.changesOutput(), len).toString('utf8');
  const parts = text.split('\0');
  const out: Change[] = new Array(parts.length - 1);
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    out[i] = { path: p.slice(1), kind: p[0] as ChangeKind };
  }
  return out;
}
