// Layer streams arrive plain or compressed; the format is told by its magic bytes, as moby's
// DecompressStream does. Every decoder runs in bounded memory whatever the input declares: a fixed
// window, streaming output, no allocation sized by a header (a layer from an untrusted registry
// must not be able to take the host down with a 2.5 KB "bomb").
// - gzip: node:zlib (32 KiB window).
// - zstd: node:zlib where this Node has it (22.15+ / 23.8+), with the window capped at 128 MiB
//   (ZSTD_d_windowLogMax 27, libzstd's default). Else the system's `zstd -d --memory=128MB` (the
//   reference decoder, streaming, window-limited, C speed), as xz and bzip2 below. Else fzstd (pure
//   JS), behind ZstdFrameWalker (zstd-frames.ts): fzstd allocates a frame's declared window up front,
//   so every frame header is checked first and a window over 32 MiB is refused. Not chosen:
//   zstd-napi and @mongodb-js/zstd (native addons: a download or a compiler at install time),
//   zstddec and zstd-codec (whole-buffer WASM, the output size must be known).
// - xz and bzip2: the system's `xz` / `bzip2` commands, as moby runs `xz -d -c -q` for xz; xz with
//   --memlimit-decompress=128MiB (its dictionary size comes from the header); bzip2's blocks are at
//   most 900 kB by format. No npm decoder for either is both maintained and streaming, so without
//   the command the layer is refused with ERR_BAD_ARCHIVE naming the format.
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { Overlay2Error } from '../errors.js';
import { ZstdFrameWalker, ZSTD_MAX_WINDOW } from './zstd-frames.js';

export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

const HEAD = 10;

/** The compression of a stream that begins with `head` (at least 10 bytes unless the stream is shorter). */
export function detectCompression(head: Uint8Array): Compression {
  const b = head;
  if (b.length >= 3 && b[0] === 0x1f && b[1] === 0x8b && b[2] === 0x08) return 'gzip';
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  // A zstd skippable frame (magic 0x184D2A5?) first, as zstd:chunked layers begin (moby checks it too).
  if (b.length >= 8 && (b[0] & 0xf0) === 0x50 && b[1] === 0x2a && b[2] === 0x4d && b[3] === 0x18) return 'zstd';
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) return 'xz';
  // "BZh" + block size digit + the block magic (pi): three bytes alone would also start a tar
  // whose first member is named "BZh...".
  if (b.length >= 10 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68 && b[3] >= 0x31 && b[3] <= 0x39 &&
      b[4] === 0x31 && b[5] === 0x41 && b[6] === 0x59 && b[7] === 0x26 && b[8] === 0x53 && b[9] === 0x59) return 'bzip2';
  return 'none';
}

const OUT_CHUNK = 256 * 1024;
/** The memory a decoder may use for its window/dictionary (zstd's and xz's limit). */
export const DECODER_MEMORY_LIMIT = ZSTD_MAX_WINDOW;
const ZSTD_WINDOWLOG_MAX = 27; // 2^27 = DECODER_MEMORY_LIMIT

/** Which zstd decoder: the best one here ('auto'), or one forced (tests and bench/bombs.ts). */
export type ZstdDecoder = 'auto' | 'zlib' | 'command' | 'fzstd';

export interface DecompressOptions {
  zstd?: ZstdDecoder;
}

type NativeZstd = (o: object) => import('node:stream').Duplex;

function nativeZstd(): NativeZstd | undefined {
  return (zlib as unknown as { createZstdDecompress?: NativeZstd }).createZstdDecompress;
}

/** The decompressed bytes of `input`, whatever its (supported) compression. Ending the iteration
 *  early (break, throw) releases everything: the source is destroyed and a helper process killed. */
export async function* decompressed(input: AsyncIterable<Buffer | Uint8Array>, opts: DecompressOptions = {}): AsyncGenerator<Buffer, void, undefined> {
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
        const which = opts.zstd ?? 'auto';
        const native = nativeZstd();
        if (which === 'zlib' || (which === 'auto' && native)) {
          if (!native) throw new Overlay2Error('ERR_NOT_SUPPORTED', `overlay2: node:zlib has no zstd in Node ${process.version}`);
          const params = { [(zlib.constants as Record<string, number>).ZSTD_d_windowLogMax]: ZSTD_WINDOWLOG_MAX };
          yield* throughTransform(rest, native({ chunkSize: OUT_CHUNK, params }), 'zstd');
        } else if (which === 'fzstd') {
          yield* throughFzstd(rest);
        } else {
          // The zstd command where it exists; a host without it still decodes, in JS.
          yield* throughCommand(rest, 'zstd', ['-d', '-c', '-q', `--memory=${DECODER_MEMORY_LIMIT >> 20}MB`], format,
            which === 'auto' ? throughFzstd : undefined);
        }
        return;
      }
      case 'xz':
        yield* throughCommand(rest, 'xz', ['-d', '-c', '-q', `--memlimit-decompress=${DECODER_MEMORY_LIMIT >> 20}MiB`], format);
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

/** Blocks handed to fzstd per push: fzstd decodes a whole push synchronously, and a 64 KiB chunk of
 *  4-byte RLE blocks would decode to 2 GiB at once; 8 blocks are at most 1 MiB of output. */
const FZSTD_BLOCKS_PER_PUSH = 8;

async function* throughFzstd(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const walker = new ZstdFrameWalker();
  let out: Buffer[] = [];
  const d = new ZstdDecompress((data) => {
    if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  });
  const drain = function* (): Generator<Buffer> {
    const ready = out;
    out = [];
    yield* ready;
  };
  const push = (piece: Uint8Array, final: boolean) => {
    try {
      d.push(piece, final);
    } catch (e) {
      throw corrupt('zstd', e);
    }
  };
  for await (const chunk of src) {
    // The headers are checked before fzstd sees them: it allocates whatever window a frame declares.
    const ends = walker.push(chunk);
    let from = 0;
    for (let k = FZSTD_BLOCKS_PER_PUSH - 1; k < ends.length; k += FZSTD_BLOCKS_PER_PUSH) {
      push(chunk.subarray(from, ends[k]), false);
      from = ends[k];
      yield* drain();
    }
    if (from < chunk.length) push(chunk.subarray(from), false);
    yield* drain();
  }
  walker.end();
  push(new Uint8Array(0), true);
  yield* drain();
}

async function* throughCommand(src: AsyncIterable<Buffer>, command: string, args: string[], format: Compression,
  withoutCommand?: (src: AsyncIterable<Buffer>) => AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  try {
    await spawned;
  } catch (e) {
    if (withoutCommand && (e as NodeJS.ErrnoException).code === 'ENOENT') {
      yield* withoutCommand(src);
      return;
    }
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
    if (code !== 0) throw corrupt(format, `${command} exited with ${code}${stderr ? `: ${stderr.trim().replace(/\s*\n\s*/g, '; ')}` : ''}`);
    finished = true;
  } finally {
    source.destroy();
    if (!finished && child.exitCode === null) child.kill('SIGKILL');
  }
}
