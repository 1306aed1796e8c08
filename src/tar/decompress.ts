// Layer streams arrive plain or compressed; the format is told by its magic bytes, as moby's
// DecompressStream does. gzip: node:zlib. zstd: node:zlib where this Node has it (22.15+), else
// fzstd (pure JS). xz and bzip2: the system's `xz` / `bzip2` commands, as moby runs `xz -d -c -q`
// for xz; no npm decoder for either is both maintained and streaming, so without the command the
// layer is refused with ERR_BAD_ARCHIVE naming the format.
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { Overlay2Error } from '../errors.js';

export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

const HEAD = 10;

/** The compression of a stream that begins with `head` (at least 10 bytes unless the stream is shorter). */
export function detectCompression(head: Uint8Array): Compression {
  const b = head;
  if (b.length >= 3 && b[0] === 0x1f && b[1] === 0x8b && b[2] === 0x08) return 'gzip';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) return 'xz';
  // "BZh" + block size digit + the block magic (pi): three bytes alone would also start a tar
  // whose first member is named "BZh...".
  if (b.length >= 10 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68 && b[3] >= 0x31 && b[3] <= 0x39 &&
      b[4] === 0x31 && b[5] === 0x41 && b[6] === 0x59 && b[7] === 0x26 && b[8] === 0x53 && b[9] === 0x59) return 'bzip2';
  return 'none';
}

const OUT_CHUNK = 256 * 1024;

/** The decompressed bytes of `input`, whatever its (supported) compression. Ending the iteration
 *  early (break, throw) releases everything: the source is destroyed and a helper process killed. */
export async function* decompressed(input: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<Buffer, void, undefined> {
  const it = input[Symbol.asyncIterator]();
  const headParts: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  try {
    while (headLen < HEAD) {
      const r = await it.next();
      if (r.done) { ended = true; break; }
      const b = toBuffer(r.value);
      headParts.push(b);
      headLen += b.length;
    }
    const head = headParts.length === 1 ? headParts[0] : Buffer.concat(headParts);
    const format = detectCompression(head);
    const rest = restOf(head, it, ended);
    switch (format) {
      case 'none':
        yield* rest;
        return;
      case 'gzip':
        yield* throughTransform(rest, zlib.createGunzip({ chunkSize: OUT_CHUNK }), 'gzip');
        return;
      case 'zstd': {
        const native = (zlib as unknown as { createZstdDecompress?: (o: object) => NodeJS.ReadWriteStream }).createZstdDecompress;
        if (native) yield* throughTransform(rest, native({ chunkSize: OUT_CHUNK }) as unknown as import('node:stream').Duplex, 'zstd');
        else yield* throughFzstd(rest);
        return;
      }
      case 'xz':
        yield* throughCommand(rest, 'xz', ['-d', '-c', '-q'], format);
        return;
      case 'bzip2':
        yield* throughCommand(rest, 'bzip2', ['-d', '-c', '-q'], format);
        return;
    }
  } finally {
    await it.return?.();
  }
}

function toBuffer(v: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

async function* restOf(head: Buffer, it: AsyncIterator<Buffer | Uint8Array>, ended: boolean): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  if (ended) return;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield toBuffer(r.value);
  }
}

function corrupt(format: string, cause: unknown): Overlay2Error {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: corrupt ${format} stream: ${why}`, { cause });
}

async function* throughTransform(src: AsyncIterable<Buffer>, t: import('node:stream').Duplex, format: string): AsyncGenerator<Buffer> {
  const source = Readable.from(src, { objectMode: false });
  let sourceError: unknown;
  source.on('error', (e) => { sourceError = e; t.destroy(e); });
  source.pipe(t);
  try {
    for await (const chunk of t) yield chunk as Buffer;
  } catch (e) {
    if (sourceError !== undefined) throw sourceError;
    throw corrupt(format, e);
  } finally {
    source.destroy();
    t.destroy();
  }
}

async function* throughFzstd(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let out: Buffer[] = [];
  const d = new ZstdDecompress((data) => {
    if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  const drain = function* (): Generator<Buffer> {
    const ready = out;
    out = [];
    yield* ready;
  };
  for await (const chunk of src) {
    try {
      d.push(chunk);
    } catch (e) {
      throw corrupt('zstd', e);
    }
    yield* drain();
  }
  try {
    d.push(new Uint8Array(0), true);
  } catch (e) {
    throw corrupt('zstd', e);
  }
  yield* drain();
}

async function* throughCommand(src: AsyncIterable<Buffer>, command: string, args: string[], format: Compression): AsyncGenerator<Buffer> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
  } catch (e) {
    throw new Overlay2Error('ERR_BAD_ARCHIVE',
      `overlay2: bad archive: ${format}-compressed layers are not supported here (no \`${command}\` command: ${(e as Error).message})`,
      { cause: e });
  }
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { if (stderr.length < 4096) stderr += s; });
  const source = Readable.from(src, { objectMode: false });
  let sourceError: unknown;
  source.on('error', (e) => { sourceError = e; child.kill('SIGKILL'); });
  child.stdin!.on('error', () => { /* EPIPE when the decoder stops early: its exit status says why */ });
  source.pipe(child.stdin!);
  let finished = false;
  try {
    for await (const chunk of child.stdout!) yield chunk as Buffer;
    const code = await exited;
    if (sourceError !== undefined) throw sourceError;
    if (code !== 0) throw corrupt(format, `${command} exited with ${code}${stderr ? `: ${stderr.trim()}` : ''}`);
    finished = true;
  } finally {
    source.destroy();
    if (!finished && child.exitCode === null) child.kill('SIGKILL');
  }
}
