// What applyDiff takes as a layer: a Node Readable, a web ReadableStream, an async iterable of
// bytes, a Buffer/Uint8Array, or a file path. Anything else is a caller's bug, told at once.
import { createReadStream, fstatSync, ReadStream, statSync } from 'node:fs';
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
  if (src instanceof Readable) return { input: src, totalBytes: fileStreamSize(src) };
  if (src !== null && typeof src === 'object') {
    if (typeof (src as ReadableStream).getReader === 'function') return { input: fromWeb(src as ReadableStream<Uint8Array>) };
    if (typeof (src as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') return { input: bytesOnly(src as AsyncIterable<unknown>) };
  }
  throw new Overlay2Error('ERR_INVALID_ARG_TYPE',
    `overlay2: applyDiff takes a Readable, a ReadableStream, an AsyncIterable of bytes, a Buffer or a file path, got ${describe(src)}`);
}

/** The bytes an fs.ReadStream of a regular file will give (`overlay2 apply -i FILE`, or stdin
 *  redirected from a file): the file's size from the stream's start, up to its end. Other streams
 *  (pipes, sockets) have no size to give. */
function fileStreamSize(src: Readable): number | undefined {
  if (!(src instanceof ReadStream)) return undefined;
  const s = src as ReadStream & { fd: number | null; start?: number; end?: number };
  try {
    const st = typeof s.fd === 'number' ? fstatSync(s.fd) : statSync(s.path);
    if (!st.isFile()) return undefined;
    const start = typeof s.start === 'number' ? s.start : 0;
    const end = typeof s.end === 'number' && Number.isFinite(s.end) ? Math.min(s.end + 1, st.size) : st.size;
    return Math.max(0, end - start);
  } catch {
    return undefined;
  }
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
