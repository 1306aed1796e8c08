// Feeds a layer stream, decompressed, to a synchronous consumer. One fast path: an fs.ReadStream of a
// regular file that nobody has read yet (`overlay2 apply < layer.tar` gives process.stdin as one) is
// read with readSync into a single reused 1 MiB buffer. Streaming it instead allocates a fresh
// 64 KiB Buffer per chunk and costs ~6x the CPU of the read itself (bench/RESULTS.md, applyDiff).
import * as fs from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { decompressed, detectCompression } from './decompress.js';

const CHUNK = 1 << 20;
/** The synchronous file path yields to the event loop this often, so an AbortSignal's timer or a
 *  progress line gets a turn (a microtask await is not enough: timers run between macrotasks). */
const YIELD_EVERY = 16;

/** Told how many input (still compressed) bytes were read: for progress. */
export type OnInput = (bytes: number) => void;

/** Calls `push` with every decompressed chunk of `input`, in order; the chunk may be reused after
 *  push returns (or, when it returns a promise, after that settles: the consumer's back-pressure).
 *  Ends (or throws) with the input; the input stream is destroyed either way. */
export async function feed(input: Readable | AsyncIterable<Uint8Array>, push: (chunk: Buffer) => void | Promise<void>, onInput?: OnInput): Promise<void> {
  const fd = input instanceof fs.ReadStream ? await unreadFileFd(input as FileStream) : null;
  if (fd === null) {
    try {
      for await (const chunk of decompressed(onInput ? counted(input, onInput) : input)) await push(chunk);
    } finally {
      (input as Partial<Readable>).destroy?.();
    }
    return;
  }
  const stream = input as FileStream;
  try {
    const start = typeof stream.start === 'number' ? stream.start : null;
    const end = typeof stream.end === 'number' && Number.isFinite(stream.end) ? stream.end + 1 : Infinity;
    let pos = start;
    let left = start === null ? Infinity : end - start;
    const read = (buf: Buffer): number => {
      if (left <= 0) return 0;
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, left), pos);
      if (pos !== null) pos += n;
      left -= n;
      onInput?.(n);
      return n;
    };
    let reads = 0;
    const breathe = (): Promise<void> | null =>
      ++reads % YIELD_EVERY === 0 ? new Promise((resolve) => setImmediate(resolve)) : null;
    const buf = Buffer.allocUnsafe(CHUNK);
    let head = 0;
    for (let n; head < 10 && (n = read(buf.subarray(head))) > 0;) head += n;
    if (detectCompression(buf.subarray(0, head)) === 'none') {
      if (head > 0) await push(buf.subarray(0, head));
      for (let n; (n = read(buf)) > 0;) {
        await push(buf.subarray(0, n));
        await breathe();
      }
      return;
    }
    // Compressed: the decoder keeps chunks past push(), so each gets its own buffer.
    async function* raw(): AsyncGenerator<Buffer> {
      yield Buffer.from(buf.subarray(0, head));
      for (;;) {
        const b = Buffer.allocUnsafe(CHUNK);
        const n = read(b);
        if (n === 0) return;
        await breathe();
        yield b.subarray(0, n);
      }
    }
    for await (const chunk of decompressed(raw())) await push(chunk);
  } finally {
    stream.destroy();
  }
}

async function* counted(input: AsyncIterable<Uint8Array>, onInput: OnInput): AsyncGenerator<Uint8Array> {
  for await (const chunk of input) {
    onInput(chunk.byteLength);
    yield chunk;
  }
}

/** The fd of a ReadStream on a regular file that has delivered nothing yet, else null. */
/** The untyped fields of fs.ReadStream this reads (present since Node 0.x). */
type FileStream = fs.ReadStream & { fd: number | null; start?: number; end?: number };

async function unreadFileFd(s: FileStream): Promise<number | null> {
  if (s.destroyed || s.readableFlowing !== null || s.bytesRead !== 0 || s.readableLength !== 0) return null;
  if (typeof s.fd !== 'number') {
    // still opening: wait for it (an open error surfaces through the normal path below)
    try {
      await once(s, 'open'); // rejects when the stream emits 'error' first
    } catch {
      return null;
    }
  }
  const fd = s.fd as unknown;
  if (typeof fd !== 'number') return null;
  try {
    return fs.fstatSync(fd).isFile() ? fd : null;
  } catch {
    return null;
  }
}
