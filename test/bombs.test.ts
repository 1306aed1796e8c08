// Decompression bombs: whatever a stream declares, decoding runs in bounded memory. Each case decodes
// in a child process and asserts its peak RSS (VmHWM): memory, unlike time, is a fair assertion.
// Figures for bigger inputs (and a 4 GiB honest layer through applyDiff): bench/bombs.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { tempDir, testIf } from './support/env.js';
import { zstdRleFrame, zstdWindowFrame } from './support/bombs.js';

const CHILD = join(process.cwd(), 'dist', 'test', 'support', 'decode-child.js');
const MEMORY_BAR_KIB = 200 * 1024;
const scratch = tempDir('ovl2-bombs-');

function haveCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const hasNativeZstd = typeof (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
const zstdDecoders = [
  ['fzstd', true, ''],
  ['command', haveCommand('zstd'), 'no `zstd` command here'],
  ['zlib', hasNativeZstd, `node:zlib has no zstd in Node ${process.version}`],
] as const;

interface Decoded { ok: boolean; bytes: number; code?: string; message?: string; hwmKiB: number }

function decode(data: Buffer, decoder = 'auto'): Decoded {
  const path = join(scratch, `input-${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(path, data);
  try {
    const r = spawnSync(process.execPath, [CHILD, path, decoder], { encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, `decoder child exited ${r.status} (${r.signal ?? ''}): ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Decoded;
  } finally {
    fs.rmSync(path, { force: true });
  }
}

function underBar(d: Decoded, what: string): void {
  assert.ok(d.hwmKiB > 0 && d.hwmKiB < MEMORY_BAR_KIB, `${what}: peak RSS ${(d.hwmKiB / 1024).toFixed(0)} MiB (bar ${MEMORY_BAR_KIB / 1024} MiB)`);
}

for (const [decoder, can, why] of zstdDecoders) {
  const t = testIf(can, `zstd bombs through ${decoder}`, why);

  t(`zstd (${decoder}): 20 frames each declaring a 2,000,000,000-byte content size are refused in bounded memory`, () => {
    const bomb = Buffer.concat(Array.from({ length: 20 }, () => zstdRleFrame(2_000_000_000, 600)));
    assert.ok(bomb.length < 60_000);
    const d = decode(bomb, decoder);
    assert.is(d.ok, false);
    assert.is(d.code, 'ERR_BAD_ARCHIVE', d.message);
    assert.ok(!d.message!.includes('\n'), 'one line');
    underBar(d, decoder);
  });

  t(`zstd (${decoder}): a frame whose window descriptor says 2 GiB is refused in bounded memory`, () => {
    const d = decode(Buffer.concat([zstdWindowFrame(31, 600), zstdWindowFrame(31, 600)]), decoder);
    assert.is(d.code, 'ERR_BAD_ARCHIVE', d.message);
    underBar(d, decoder);
  });
}

test('zstd (fzstd): 30 frames at the JS decoder\'s window limit (32 MiB) stay bounded', () => {
  // fzstd touches its whole window for every block: 8 blocks per frame keep this test quick.
  const d = decode(Buffer.concat(Array.from({ length: 30 }, () => zstdRleFrame(32 * 1024 * 1024, 8))), 'fzstd');
  assert.ok(d.ok, d.message);
  assert.is(d.bytes, 30 * 8 * 128 * 1024);
  underBar(d, 'fzstd at its limit');
});

test('zstd (fzstd): one 64 KiB chunk of RLE blocks (2 GiB of output) is decoded a few blocks at a time', () => {
  // 16,000 four-byte RLE blocks of 128 KiB in one frame (declaring a 128 KiB window): 2 GiB out of
  // 64 KiB in, which fzstd would have decoded in one push.
  const d = decode(zstdRleFrame(128 * 1024, 16_000), 'fzstd');
  assert.ok(d.ok, d.message);
  assert.is(d.bytes, 16_000 * 128 * 1024);
  underBar(d, 'fzstd RLE run');
});

testIf(haveCommand('zstd'), 'honest zstd through fzstd', 'no `zstd` command here')(
  'zstd (fzstd): honest multi-frame streams (checksums, skippable frames, level 19) decode byte for byte', () => {
    const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(2_000_000, 7), randomBytes(50_000)]);
    const a = execFileSync('zstd', ['-19', '--check', '-c', '-q'], { input: data, maxBuffer: 1 << 26 });
    const b = execFileSync('zstd', ['-1', '--no-check', '-c', '-q'], { input: data, maxBuffer: 1 << 26 });
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0]), Buffer.from('hello')]);
    const stream = Buffer.concat([skippable, a, skippable, b]);
    const path = join(scratch, 'honest.zst');
    fs.writeFileSync(path, stream);
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { decompressed } from ${JSON.stringify(join(process.cwd(), 'dist/src/tar/decompress.js'))};
      import * as fs from 'node:fs';
      import { createHash } from 'node:crypto';
      const h = createHash('sha256');
      for await (const c of decompressed(fs.createReadStream(${JSON.stringify(path)}, { highWaterMark: 1000 }), { zstd: 'fzstd' })) h.update(c);
      console.log(h.digest('hex'));`], { encoding: 'utf8' });
    assert.is(out.trim(), createHash('sha256').update(Buffer.concat([data, data])).digest('hex'));
  });

test('gzip: a 1000:1 bomb (256 MiB of zeros) decodes in bounded memory', () => {
  const gz = zlib.gzipSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 });
  assert.ok(gz.length * 1000 < 256 * 1024 * 1024);
  const d = decode(gz);
  assert.ok(d.ok, d.message);
  assert.is(d.bytes, 256 * 1024 * 1024);
  underBar(d, 'gzip bomb');
});

testIf(haveCommand('xz'), 'the xz dictionary test', 'no `xz` command here')(
  'xz: a stream that asks for a 1.5 GiB dictionary is refused (ERR_BAD_ARCHIVE), not decoded', () => {
    const xz = execFileSync('xz', ['-c', '-q', '--lzma2=dict=1536MiB'], { input: Buffer.alloc(1000, 1) });
    const d = decode(xz);
    assert.is(d.code, 'ERR_BAD_ARCHIVE', d.message);
    assert.match(d.message!, /memory/i);
  });

test.after(() => fs.rmSync(scratch, { recursive: true, force: true }));
test.run();

