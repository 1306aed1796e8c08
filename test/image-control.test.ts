// applyDiff's inputs (Readable, web ReadableStream, async iterable, Buffer, Uint8Array, path; the
// rest refused), onProgress and AbortSignal on applyDiff/diff/save, and apply refusing an image
// archive while taking a layer that merely holds a manifest.json.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { Overlay2Error } from '../src/errors.js';
import type { Progress } from '../src/progress.js';
import { mountTest, tempDir, removeTree } from './support/env.js';
import { buildOciLayout, buildLayer, sha256 } from './image-fixtures.js';

const test = mountTest(uvuTest);
let base = '';
let driver: Overlay2Driver;
let layerTar = '';
let layerBytes: Buffer;
let bigTar = '';

test.before(async () => {
  base = tempDir('ovl2-image-control-');
  driver = await Overlay2Driver.init(join(base, 'home'));
  const l = buildLayer(join(base, 'src'), { files: { 'a': 'a', 'd/': '', 'd/b': 'b'.repeat(10000), 's': '->a' }, compress: 'gzip' });
  layerBytes = l.blob;
  layerTar = join(base, 'layer.tar.gz');
  fs.writeFileSync(layerTar, l.blob);
  // ~48 MiB over 24 files: big enough that an abort lands in the middle
  const big = join(base, 'big');
  fs.mkdirSync(big);
  const mb = Buffer.alloc(1 << 21, 7);
  for (let i = 0; i < 24; i++) fs.writeFileSync(join(big, `f${i}`), mb);
  bigTar = join(base, 'big.tar');
  execFileSync('tar', ['-C', big, '-cf', bigTar, '.']);
});

test.after(() => removeTree(base));

function tree(id: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = join(d, n);
      out.push(`${rel}${n}`);
      if (fs.lstatSync(p).isDirectory()) walk(p, `${rel}${n}/`);
    }
  };
  walk(join(driver.home, id, 'diff'), '');
  return out;
}

test('applyDiff takes a path, Buffer, Uint8Array, Readable, web ReadableStream and async iterable alike', async () => {
  const u8 = new Uint8Array(layerBytes);
  const sources: Array<[string, () => unknown]> = [
    ['path', () => layerTar],
    ['buffer', () => layerBytes],
    ['uint8array', () => u8],
    ['readable', () => fs.createReadStream(layerTar, { highWaterMark: 333 })],
    ['web', () => Readable.toWeb(fs.createReadStream(layerTar))],
    ['iterable', () => (async function* () { for (let i = 0; i < layerBytes.length; i += 100) yield layerBytes.subarray(i, i + 100); })()],
  ];
  let want: string[] | null = null;
  for (const [name, make] of sources) {
    const id = `in-${name}`;
    await driver.create(id);
    await driver.applyDiff(id, null, make() as never);
    const t = tree(id);
    want ??= t;
    assert.equal(t, want, name);
    assert.equal(want, ['a', 'd', 'd/b', 's']);
    const rec = JSON.parse(fs.readFileSync(join(driver.home, id, 'ovl2-layer.json'), 'utf8'));
    assert.is(rec.diffId, sha256(execFileSync('gzip', ['-dc', layerTar])), name);
  }
  await driver.create('in-bad');
  for (const bad of [42, null, {}, { pipe: 1 }, ['not', 'bytes']]) {
    const e = await driver.applyDiff('in-bad', null, bad as never).catch((x: unknown) => x);
    assert.instance(e, Overlay2Error);
    assert.is((e as Overlay2Error).code, 'ERR_INVALID_ARG_TYPE');
  }
  const e = await driver.applyDiff('in-bad', null, (async function* () { yield 'text'; })() as never).catch((x: unknown) => x);
  assert.is((e as Overlay2Error).code, 'ERR_INVALID_ARG_TYPE');
  assert.equal(tree('in-bad'), []);
});

test('onProgress: bytes reach totalBytes for a file, entries count the members', async () => {
  await driver.create('prog');
  const seen: Progress[] = [];
  await driver.applyDiff('prog', null, bigTar, { onProgress: (p) => seen.push(p) });
  const last = seen[seen.length - 1];
  const size = fs.statSync(bigTar).size;
  assert.is(last.totalBytes, size);
  assert.is(last.bytes, size);
  assert.is(last.entries, 25); // ./ and 24 files
  assert.ok(seen.length > 2);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].bytes >= seen[i - 1].bytes);

  const diffSeen: Progress[] = [];
  const chunks: Buffer[] = [];
  for await (const c of await driver.diff('prog', null, { onProgress: (p) => diffSeen.push(p) })) chunks.push(c as Buffer);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  assert.is(diffSeen[diffSeen.length - 1].bytes, total);
  assert.is(diffSeen[diffSeen.length - 1].entries, 24); // the export has no entry for the root
});

test('an abort in the middle of a big applyDiff leaves the layer as it was, and no staging dir', async () => {
  await driver.create('abort');
  const ac = new AbortController();
  let aborted = false;
  const e = await driver.applyDiff('abort', null, bigTar, {
    signal: ac.signal,
    onProgress: (p) => {
      if (!aborted && p.bytes > 8 << 20) {
        aborted = true;
        setTimeout(() => ac.abort(), 0); // from outside, as a caller would
      }
    },
  }).catch((x: unknown) => x);
  assert.is((e as Error).name, 'AbortError');
  assert.equal(tree('abort'), []);
  assert.equal(fs.readdirSync(join(driver.home, 'abort')).sort(), ['diff', 'link']);
  // the same stream unaborted goes in whole afterwards
  await driver.applyDiff('abort', null, bigTar);
  assert.is(tree('abort').length, 24);

  // aborted before it starts: nothing read
  const pre = new AbortController();
  pre.abort();
  await driver.create('abort2');
  const e2 = await driver.applyDiff('abort2', null, bigTar, { signal: pre.signal }).catch((x: unknown) => x);
  assert.is((e2 as Error).name, 'AbortError');

  // diff: the stream errors with the abort
  const ac3 = new AbortController();
  const s = await driver.diff('abort', null, { signal: ac3.signal });
  const e3 = await (async () => {
    try {
      for await (const _ of s) ac3.abort();
    } catch (x) {
      return x;
    }
    return null;
  })();
  assert.is((e3 as Error).name, 'AbortError');

  // save: no output left
  const out = join(base, 'aborted-save.tar');
  const ac4 = new AbortController();
  const e4 = await driver.save('abort', out, { signal: ac4.signal, onProgress: (p) => { if (p.bytes > 1 << 20) ac4.abort(); } }).catch((x: unknown) => x);
  assert.is((e4 as Error).name, 'AbortError');
  assert.not.ok(fs.existsSync(out));
  assert.equal(fs.readdirSync(base).filter((n) => n.includes('.tmp-')), []);
});

test('apply refuses a docker save / OCI archive (pointing at load), takes a layer holding a manifest.json', async () => {
  const img = buildOciLayout(join(base, 'img-scratch'), join(base, 'img'), [{ files: { x: 'x' } }]);
  const ociTar = join(base, 'img.tar');
  execFileSync('tar', ['-C', img.layout, '-cf', ociTar, 'oci-layout', 'index.json', 'blobs']);
  await driver.create('refuse');
  const e = await driver.applyDiff('refuse', null, ociTar).catch((x: unknown) => x);
  assert.is((e as Overlay2Error).code, 'ERR_BAD_ARCHIVE');
  assert.match((e as Error).message, /overlay2 load/);
  assert.equal(tree('refuse'), []);

  // legacy docker save: layers first, manifest.json last
  const legacy = join(base, 'legacy');
  const hex = 'a'.repeat(64);
  fs.mkdirSync(join(legacy, hex), { recursive: true });
  fs.writeFileSync(join(legacy, hex, 'layer.tar'), img.layers[0].tar);
  fs.writeFileSync(join(legacy, 'manifest.json'), '[]');
  const legacyTar = join(base, 'legacy.tar');
  execFileSync('tar', ['-C', legacy, '-cf', legacyTar, hex, 'manifest.json']);
  const e2 = await driver.applyDiff('refuse', null, legacyTar).catch((x: unknown) => x);
  assert.is((e2 as Overlay2Error).code, 'ERR_BAD_ARCHIVE');
  assert.equal(tree('refuse'), []);

  // a web app's root with manifest.json and index.json is a layer
  const web = buildLayer(join(base, 'web'), { files: { 'manifest.json': '{}', 'index.json': '{}', 'blobs/': '' }, compress: 'none' });
  await driver.applyDiff('refuse', null, web.tar);
  assert.equal(tree('refuse'), ['blobs', 'index.json', 'manifest.json']);
});

test.run();
