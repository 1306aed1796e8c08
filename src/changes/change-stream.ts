// changesStream's iterable: the change list handed out as the native walk writes it (chunks of the
// core's output, src/changes/native.ts), one Change at a time or (chunks()) an array at a time. The
// naive comparison and a thin layer's own list come whole and are handed out from the array.
import type { Change } from './change.js';

/** Thrown when the layer holds something only the naive comparison handles (redirects,
 *  metacopy, names the walk cannot reopen): the caller falls back to changesNaive. An internal
 *  signal, never shown to a user (the driver and ChangeStream catch it by class). */
export class NeedsNaive extends Error {
  constructor(readonly why: string) {
    super(`overlay2: native changes not possible: ${why}`);
    this.name = 'NeedsNaive';
  }
}

/** Where a layer's changes come from, decided once the layer is checked. */
export interface ChangeSources {
  /** The native walk's chunks, or null when the layer has no native diff. It may throw NeedsNaive
   *  part way: `whole` then answers, and what was handed out already is skipped (native == naive). */
  native: (() => AsyncIterable<Change[]>) | null;
  /** The whole list: the naive comparison, or a thin layer's own. */
  whole: () => Promise<Change[]>;
}

/** A whole list goes out in slices of this many (so a consumer's writes stay small). */
const SLICE = 8192;

async function* chunksOf(open: () => Promise<ChangeSources>): AsyncGenerator<Change[]> {
  const src = await open();
  let handed = 0;
  if (src.native) {
    try {
      for await (const chunk of src.native()) {
        handed += chunk.length;
        yield chunk;
      }
      return;
    } catch (e) {
      if (!(e instanceof NeedsNaive)) throw e;
    }
  }
  const all = await src.whole();
  for (let i = handed; i < all.length; i += SLICE) yield all.slice(i, i + SLICE);
}

/**
 * The changes of a layer in byte order, as `changes()` returns them: `for await (const c of
 * stream)`, or `for await (const list of stream.chunks())` for arrays as the walk hands them out
 * (fewer awaits: what the CLI and the plugin use). Iterate it once, one way. Nothing runs until the
 * first `next()`; leaving the loop early stops the walk and closes what it holds.
 */
export class ChangeStream implements AsyncIterableIterator<Change> {
  readonly #source: AsyncGenerator<Change[]>;
  #chunk: Change[] = [];
  #at = 0;
  #taken = false;

  constructor(open: () => Promise<ChangeSources>) {
    this.#source = chunksOf(open);
  }

  /** The changes an array at a time, in order. */
  chunks(): AsyncGenerator<Change[]> {
    this.#take();
    return this.#source;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  // Written out rather than as an async generator: a change already in the chunk costs a resolved
  // promise, not a generator resumption (a 1M-change list: ~0.4 s less).
  next(): Promise<IteratorResult<Change>> {
    if (this.#at < this.#chunk.length) return Promise.resolve({ value: this.#chunk[this.#at++]!, done: false });
    this.#take(true);
    return this.#fill();
  }

  async return(): Promise<IteratorResult<Change>> {
    await this.#source.return(undefined);
    return { value: undefined, done: true };
  }

  async #fill(): Promise<IteratorResult<Change>> {
    for (;;) {
      const r = await this.#source.next();
      if (r.done) return { value: undefined, done: true };
      this.#chunk = r.value;
      this.#at = 0;
      if (this.#chunk.length > 0) return { value: this.#chunk[this.#at++]!, done: false };
    }
  }

  #take(byChange = false): void {
    if (this.#taken && !byChange) throw new Error('overlay2: a ChangeStream is iterated once, one way');
    this.#taken = true;
  }
}

/**
 * Iterates `source` inside `around(body)` — for a resource held only in a callback's form (a thin
 * layer's repositories, mounted for the walk) — handing each item out through the generator. The
 * body waits for the consumer between items; leaving the loop early ends the body, so `around`
 * releases what it holds before this returns.
 */
export async function* within<T>(around: (body: () => Promise<void>) => Promise<void>, source: () => AsyncIterable<T>): AsyncGenerator<T> {
  type Msg = { item: T } | { end: true } | { error: unknown };
  let give: (m: Msg) => void = () => undefined;
  let next = new Promise<Msg>((r) => { give = r; });
  let ack: (go: boolean) => void = () => undefined;
  const run = around(async () => {
    for await (const item of source()) {
      const go = new Promise<boolean>((r) => { ack = r; });
      give({ item });
      if (!(await go)) return; // the consumer left: `for await` closes the source
    }
  }).then(() => give({ end: true }), (error: unknown) => give({ error }));
  try {
    for (;;) {
      const m = await next;
      next = new Promise<Msg>((r) => { give = r; });
      if ('end' in m) return;
      if ('error' in m) throw m.error;
      yield m.item;
      ack(true);
    }
  } finally {
    ack(false);
    await run;
  }
}
