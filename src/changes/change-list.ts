// Reads the core's change lists ("<kind><path>\0" per change: the naive comparison's whole sorted
// list, or one chunk of the native walk's output) into Change objects.
import { isUtf8 } from 'node:buffer';
import type { Change, ChangeKind } from './change.js';
import type { Core } from '../core/wasm.js';
import { goDisplay } from '../util/byte-names.js';

/** A change of a list read out of the core: its pathBytes is a view of the list's one buffer, made
 *  on first use — most callers read path and kind only, and 50k Buffer views cost the main thread
 *  more than decoding and splitting the whole list. */
class ListedChange implements Change {
  readonly #list: Buffer;
  readonly #start: number;
  readonly #end: number;
  #bytes: Buffer | null = null;

  constructor(readonly path: string, readonly kind: ChangeKind, list: Buffer, start: number, end: number) {
    this.#list = list;
    this.#start = start;
    this.#end = end;
  }

  get pathBytes(): Buffer {
    return (this.#bytes ??= this.#list.subarray(this.#start, this.#end));
  }
}

export function takeChanges(core: Core): Change[] {
  const len = core.exports.changesFinish();
  if (len === 0) return [];
  // one copy out of the core's memory; every path's bytes are a view of it
  return readChangeList(Buffer.from(core.buffer(core.exports.changesOutput(), len)));
}

/** The changes of a packed list `all` (a Buffer of its own: each change's pathBytes is a view of it). */
export function readChangeList(all: Buffer): Change[] {
  const len = all.length;
  const out: Change[] = [];
  if (isUtf8(all)) {
    // the usual case: the whole list decoded once, each display path a slice of it (a valid list
    // splits into valid paths: the kinds and the NULs are ASCII, so no sequence is cut)
    const text = all.toString('utf8');
    for (let start = 0, at = 0; start < len;) {
      let end = all.indexOf(0, start);
      if (end < 0) end = len;
      let textEnd = text.indexOf('\0', at);
      if (textEnd < 0) textEnd = text.length;
      out.push(new ListedChange(text.slice(at + 1, textEnd), text[at] as ChangeKind, all, start + 1, end));
      start = end + 1;
      at = textEnd + 1;
    }
    return out;
  }
  for (let start = 0; start < len;) {
    let end = all.indexOf(0, start);
    if (end < 0) end = len;
    out.push(new ListedChange(goDisplay(all.subarray(start + 1, end)), String.fromCharCode(all[start]!) as ChangeKind, all, start + 1, end));
    start = end + 1;
  }
  return out;
}
