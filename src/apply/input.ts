// What applyDiff takes as a layer: a Node Readable, a web ReadableStream, an async iterable of
// bytes, a Buffer/Uint8Array, or a file path. Anything else is a caller's bug, told at once.
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Overlay2Error } from '../errors.js';
import type { ApplyInput } from './apply.js';

export type LayerSource = Readable | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array | string;

export interface NormalizedInput {
  input: ApplyInput;
  /** Input bytes, when known (a file, a buffer). */
  totalBytes?: number;
}

export function normalizeLayerSource(src: unknown): NormalizedInput {
  if (typeof src === 'string') {
    const st = statSync(src); // ENOENT etc. with the path, before anything is touched
    return { input: createReadStream(src), totalBytes: st.isFile() ? st.size : undefined };
  }
  if (src instanceof Uint8Array) return { input: [src] as unknown as AsyncIterable<Uint8Array>, totalBytes: src.byteLength };
  if (src instanceof Readable) return { input: src };
  if (src !== null && typeof src === 'object') {
    if (typeof (src as ReadableStream).getReader === 'function') return { input: fromWeb(src as ReadableStream<Uint8Array>) };
    if (typeof (src as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') return { input: bytesOnly(src as AsyncIterable<unknown>) };
  }
  throw new Overlay2Error('ERR_INVALID_ARG_TYPE',
    `overlay2: applyDiff takes a Readable, a ReadableStream, an AsyncIterable of bytes, a Buffer or a file path, got ${describe(src)}`);
}

async function* fromWeb(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      yield chunkOf(r.value);
    }
  } finally {
    reader.releaseLock();
    await stream.cancel().catch(() => undefined);
  }
}

async function* bytesOnly(it: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const c of it) yield chunkOf(c);
}

function chunkOf(c: unknown): Uint8Array {
  if (c instanceof Uint8Array) return c;
  throw new Overlay2Error('ERR_INVALID_ARG_TYPE', `overlay2: applyDiff's stream gave ${describe(c)}, not bytes (Uint8Array)`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no constructor'})`;
  return typeof v;
}
