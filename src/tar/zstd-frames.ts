// A walker over the frame structure of a zstd stream (RFC 8878 §3.1), run ahead of fzstd. fzstd
// allocates each frame's window — the declared content size, for a single-segment frame — up front
// and copies through all of it for every block: a 2.5 KB frame declaring 2,000,000,000 bytes cost
// 2 GB. The walker reads only headers (no decoding) and refuses a frame whose window exceeds the
// limit, or a block larger than the format allows, before fzstd sees the frame's first byte.
import { Overlay2Error } from '../errors.js';

/** zstd's own default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27): anything `zstd` makes
 *  without --long=28+ or --ultra with a window over 128 MiB decodes. */
export const ZSTD_MAX_WINDOW = 128 * 1024 * 1024;
/** fzstd keeps the window in JS memory and touches all of it for every block, and a frame's window is
 *  garbage only once the next frame has allocated its own: the JS fallback takes windows up to 32 MiB
 *  (every zstd level up to 19 uses at most 8 MiB; klauspost/compress's encoder, which containerd
 *  and buildkit use, 8 MiB by default), so that several frames stay well under 200 MiB. */
export const FZSTD_MAX_WINDOW = 32 * 1024 * 1024;
/** Block_Maximum_Size: no block, compressed or regenerated, may exceed 128 KiB. */
const MAX_BLOCK = 128 * 1024;

const ZSTD_MAGIC = 0xfd2fb528;

type State =
  | { at: 'magic' }
  | { at: 'skippable-size' }
  | { at: 'frame-header' }
  | { at: 'block-header' }
  | { at: 'skip'; left: number; then: 'block-header' | 'magic' | 'checksum' };

export class ZstdFrameWalker {
  private state: State = { at: 'magic' };
  private readonly pending = Buffer.alloc(18);
  private have = 0;
  private checksum = false;
  private lastBlock = false;
  private maxBlock = MAX_BLOCK;
  private skippable = false;

  constructor(private readonly maxWindow = FZSTD_MAX_WINDOW) {}

  /** Checks the headers in `chunk` (the next bytes of the stream); throws ERR_BAD_ARCHIVE. Returns
   *  the offsets in `chunk` just past each block (the points where the caller may cut the chunk so
   *  that one piece decodes to a bounded amount: a 4-byte RLE block yields 128 KiB). */
  push(chunk: Uint8Array): number[] {
    const blockEnds: number[] = [];
    let i = 0;
    while (i < chunk.length) {
      const s = this.state;
      if (s.at === 'skip') {
        const n = Math.min(s.left, chunk.length - i);
        i += n;
        s.left -= n;
        if (s.left === 0) {
          if (s.then !== 'magic' || !this.skippable) blockEnds.push(i);
          this.afterSkip(s.then);
        }
        continue;
      }
      const want = this.wanted();
      const n = Math.min(want - this.have, chunk.length - i);
      this.pending.set(chunk.subarray(i, i + n), this.have);
      this.have += n;
      i += n;
      if (this.have < this.wanted()) continue; // a frame header's length shows once its first byte is in
      if (this.consume()) blockEnds.push(i);
    }
    return blockEnds;
  }

  /** The stream ended: it must end between frames. */
  end(): void {
    if (this.state.at !== 'magic' || this.have !== 0) throw refuse('the stream ends inside a frame');
  }

  private wanted(): number {
    switch (this.state.at) {
      case 'magic': return 4;
      case 'skippable-size': return 4;
      case 'block-header': return 3;
      case 'frame-header': return this.have === 0 ? 1 : frameHeaderLength(this.pending[0]);
      default: return 0;
    }
  }

  /** Consumes a complete header; true when it also completed a block (an empty one). */
  private consume(): boolean {
    const p = this.pending;
    const s = this.state;
    this.have = 0;
    if (s.at === 'magic') {
      const magic = p.readUInt32LE(0);
      this.skippable = magic !== ZSTD_MAGIC;
      if (magic === ZSTD_MAGIC) this.state = { at: 'frame-header' };
      else if ((magic & 0xfffffff0) === 0x184d2a50) this.state = { at: 'skippable-size' };
      else throw refuse(`unknown frame magic 0x${magic.toString(16)}`);
    } else if (s.at === 'skippable-size') {
      const size = p.readUInt32LE(0);
      this.state = size === 0 ? { at: 'magic' } : { at: 'skip', left: size, then: 'magic' };
    } else if (s.at === 'frame-header') {
      this.frameHeader(p);
    } else if (s.at === 'block-header') {
      const h = p[0] | (p[1] << 8) | (p[2] << 16);
      this.lastBlock = (h & 1) === 1;
      const type = (h >> 1) & 3;
      const size = h >>> 3;
      if (type === 3) throw refuse('reserved block type');
      if (size > this.maxBlock) throw refuse(`a block of ${size} bytes (at most ${this.maxBlock} allowed)`);
      const body = type === 1 ? 1 : size; // RLE: one byte, repeated `size` times
      const then = this.lastBlock ? (this.checksum ? 'checksum' : 'magic') : 'block-header';
      if (body === 0) {
        this.afterSkip(then);
        return true;
      }
      this.state = { at: 'skip', left: body, then };
    }
    return false;
  }

  private afterSkip(then: 'block-header' | 'magic' | 'checksum'): void {
    this.state = then === 'checksum' ? { at: 'skip', left: 4, then: 'magic' } : { at: then };
  }

  private frameHeader(p: Buffer): void {
    const fhd = p[0];
    if (fhd & 0x08) throw refuse('reserved bit set in the frame header');
    const singleSegment = (fhd >> 5) & 1;
    this.checksum = ((fhd >> 2) & 1) === 1;
    const dictBytes = [0, 1, 2, 4][fhd & 3];
    const fcsFlag = fhd >> 6;
    const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
    let at = 1;
    let window: number;
    if (!singleSegment) {
      const wd = p[at++];
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    } else {
      window = 0;
    }
    at += dictBytes;
    if (singleSegment) {
      // The window of a single-segment frame is its declared content size: the very number fzstd
      // allocated. 8-byte sizes are read as a double; anything near 2^53 is far past the limit.
      let size = 0;
      for (let k = fcsBytes - 1; k >= 0; k--) size = size * 256 + p[at + k];
      if (fcsBytes === 2) size += 256;
      window = size;
    }
    if (window > this.maxWindow) {
      throw refuse(`a frame needs a ${describe(window)} window (declared${singleSegment ? ' content size' : ''}); at most ${describe(this.maxWindow)} is decoded by the JS decoder (Node >= 22.15 or the zstd command take up to 128 MiB)`);
    }
    this.maxBlock = Math.min(MAX_BLOCK, Math.max(window, 1));
    this.state = { at: 'block-header' };
  }
}

/** Frame_Header_Descriptor + Window_Descriptor + Dictionary_ID + Frame_Content_Size. */
function frameHeaderLength(fhd: number): number {
  const singleSegment = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  return 1 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3] + fcsBytes;
}

function describe(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes}-byte`;
}

function refuse(why: string): Overlay2Error {
  return new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: bad archive: zstd stream refused: ${why}`);
}
