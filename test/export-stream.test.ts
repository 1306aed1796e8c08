// The export as a stream: bounded read-ahead (back-pressure), headers and data split across chunk
// boundaries, errors mid-stream, and no file descriptors left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CHUNK_SIZE, exportLayer } from '../src/export/export.js';
import { IdMappings } from '../src/idmap.js';
import { collect, parseTar, patternBytes } from './export-fixture.js';
import { scratchRoot } from './support/env.js';

const opts = { userxattr: false, idMappings: new IdMappings() };
const MiB = 1 << 20;
const scratch = scratchRoot('overlay2-export-stream-');
const base = scratch.root;
const fresh = scratch.fresh;
test.after(() => scratch.remove());

const openFds = () => fs.readdirSync('/proc/self/fd').length;
const tick = () => new Promise((r) => setImmediate(r));

/** Waits until the stream has data buffered (or ended), then lets it settle. */
async function settle(s: Readable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    if (s.readableLength > 0) return resolve();
    s.once('readable', resolve);
    s.once('error', reject);
  });
  for (let i = 0; i < 20; i++) await tick();
}

test('read-ahead stays bounded while nobody reads (back-pressure)', async () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'huge'), '');
  fs.truncateSync(join(d, 'huge'), 96 * MiB); // sparse: cheap to make, 96 MiB to read
  const s = exportLayer(d, opts);
  await settle(s);
  assert.ok(s.readableLength <= 2 * CHUNK_SIZE, `read ahead ${s.readableLength} bytes without a reader`);
  let total = 0;
  for (let i = 0; i < 5; i++) {
    const c = s.read() as Buffer | null;
    if (c) total += c.length;
    await settle(s);
    assert.ok(s.readableLength <= 2 * CHUNK_SIZE, `read ahead ${s.readableLength} bytes after ${i + 1} reads`);
  }
  for await (const c of s) total += (c as Buffer).length;
  assert.is(total, 512 + 96 * MiB + 1024);
});

test('headers and data split across chunk boundaries come out whole', async () => {
  const d = fresh();
  // é-1's PAX header (2 blocks) + main block, then data filling up to 512 bytes before the first
  // chunk ends: é-2's three header blocks straddle the boundary. Then a file that crosses the
  // next boundary in its data, and files of odd sizes with PAX headers past a few more.
  const first = CHUNK_SIZE - 2048;
  const files: Array<[string, Buffer]> = [['é-1', patternBytes(first, 1)], ['é-2', patternBytes(1000, 2)]];
  files.push(['é-3', patternBytes(CHUNK_SIZE + 12_345, 3)]);
  for (let i = 0; i < 1000; i++) files.push([`é-4-${String(i).padStart(3, '0')}`, patternBytes((i * 7919) % 20_000, i + 4)]);
  for (const [name, data] of files) fs.writeFileSync(join(d, name), data);
  const tar = await collect(exportLayer(d, opts));
  assert.is(tar.indexOf(Buffer.from('PaxHeaders.0/-2')), CHUNK_SIZE - 512, 'the test no longer straddles the first boundary');
  assert.ok(tar.length > 3 * CHUNK_SIZE, 'the test no longer crosses several boundaries');
  const entries = parseTar(tar);
  assert.equal(entries.map((e) => Buffer.from(e.name, 'latin1').toString('utf8')), files.map(([n]) => n));
  for (let i = 0; i < files.length; i++) assert.ok(entries[i]!.data.equals(files[i]![1]), `data of ${files[i]![0]}`);
});

test('a file that shrank after it was listed fails the stream, and nothing stays open', async () => {
  const d = fresh();
  fs.writeFileSync(join(d, 'a'), patternBytes(2 * CHUNK_SIZE, 1));
  fs.writeFileSync(join(d, 'b'), patternBytes(2 * CHUNK_SIZE, 2));
  const before = openFds();
  const s = exportLayer(d, opts);
  await settle(s); // the scan has listed both files; a's data is being read
  fs.truncateSync(join(d, 'b'), 10);
  const err = await collect(s).then(() => null, (e: Error & { code?: string }) => e);
  assert.ok(err !== null && /shrank/.test(err.message), `expected a shrink error, got ${err}`);
  assert.is(err!.code, 'ERR_BAD_ARCHIVE');
  await tick();
  assert.is(openFds(), before);
});

test('destroying the stream mid-file closes the file and the scan', async () => {
  const d = fresh();
  fs.mkdirSync(join(d, 'x/y/z'), { recursive: true });
  fs.writeFileSync(join(d, 'x/y/z/big'), patternBytes(3 * CHUNK_SIZE, 3));
  const before = openFds();
  const s = exportLayer(d, opts);
  await settle(s);
  assert.ok(openFds() > before, 'expected the scan and the file to be open mid-stream');
  s.destroy();
  await new Promise((r) => s.once('close', r));
  assert.is(openFds(), before);
});

test('a missing upper dir is an ENOENT error on the stream, not a throw', async () => {
  let s: Readable | null = null;
  assert.not.throws(() => { s = exportLayer(join(base, 'does-not-exist'), opts); });
  const err = await collect(s!).then(() => null, (e: Error & { code?: string }) => e);
  assert.is(err?.code, 'ENOENT');
});

test('an unknown xattrs option is ERR_BAD_OPTION', async () => {
  const err = await collect(exportLayer(fresh(), { ...opts, xattrs: 'some' as 'all' })).then(() => null, (e: Error & { code?: string }) => e);
  assert.is(err?.code, 'ERR_BAD_OPTION');
});

test('many small files: every byte accounted for, in walk order', async () => {
  const d = fresh();
  const want: string[] = [];
  for (let i = 0; i < 30; i++) {
    const dir = `d${String(i).padStart(2, '0')}`;
    fs.mkdirSync(join(d, dir));
    want.push(dir + '/');
    for (let j = 0; j < 40; j++) {
      const name = `${dir}/f${String(j).padStart(2, '0')}`;
      fs.writeFileSync(join(d, name), patternBytes(1 + ((i * 40 + j) * 37) % 4096, i * 40 + j));
      want.push(name);
    }
  }
  const entries = parseTar(await collect(exportLayer(d, opts)));
  assert.equal(entries.map((e) => e.name), want);
  for (const e of entries) if (e.typeflag === '0') assert.ok(e.data.equals(fs.readFileSync(join(d, e.name))), e.name);
});

test.run();
