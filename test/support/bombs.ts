// Hand-made zstd frames that lie about their size (RFC 8878 §3.1.1): for test/bombs and bench/bombs.

/** A single-segment frame declaring `contentSize` bytes (its window, too), then `blocks` RLE
 *  blocks of 128 KiB each: 4 input bytes per 128 KiB of output. */
export function zstdRleFrame(contentSize: number, blocks: number): Buffer {
  const fcs = Buffer.alloc(4);
  fcs.writeUInt32LE(contentSize);
  return Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0]), fcs, rleBlocks(blocks)]);
}

/** A frame with a window descriptor of 2^windowLog bytes and no content size, then RLE blocks. */
export function zstdWindowFrame(windowLog: number, blocks: number): Buffer {
  return Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3]), rleBlocks(blocks)]);
}

function rleBlocks(n: number): Buffer {
  const out = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    const h = (i === n - 1 ? 1 : 0) | (1 << 1) | ((128 * 1024) << 3);
    out[i * 4] = h & 255;
    out[i * 4 + 1] = (h >> 8) & 255;
    out[i * 4 + 2] = (h >> 16) & 255;
    out[i * 4 + 3] = 0x61;
  }
  return out;
}
