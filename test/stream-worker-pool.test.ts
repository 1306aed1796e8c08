// The stream workers' pool (src/stream-worker/pool.ts): a finished stream's worker is kept warm and
// serves the next stream (no thread start per stream); one whose stream was cut is terminated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { exportLayer } from '../src/export/export.js';
import { IdMappings } from '../src/idmap.js';
import { exportInWorker, extractInWorker } from '../src/stream-worker/host.js';
import { closeStreamWorkers, prewarmStreamWorker, streamWorkerStats } from '../src/stream-worker/pool.js';
import { scratchRoot } from './support/env.js';

const opts = { userxattr: false, idMappings: new IdMappings() };
let scratch: ReturnType<typeof scratchRoot>;
let tar: Buffer;

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test.before(async () => {
  scratch = scratchRoot('ovl2-worker-pool-');
  const src = join(scratch.root, 'src');
  fs.mkdirSync(src);
  for (let i = 0; i < 3; i++) fs.writeFileSync(join(src, `f${i}`), 'x'.repeat(300));
  tar = await collect(exportLayer(src, opts));
});
test.after(async () => {
  await closeStreamWorkers();
  scratch?.remove();
});

test('sequential streams reuse one warm worker; a cut one is not reused', async () => {
  prewarmStreamWorker();
  const s0 = streamWorkerStats();
  for (let i = 0; i < 3; i++) {
    const root = join(scratch.root, `a${i}`);
    fs.mkdirSync(root);
    await extractInWorker(root, (async function* () { yield tar; })(), opts, 'mount');
    assert.is(fs.readFileSync(join(root, 'f2'), 'utf8'), 'x'.repeat(300));
    const out = await collect(exportInWorker(root, opts));
    assert.ok(out.length >= 3 * 512);
  }
  const s1 = streamWorkerStats();
  assert.is(s1.started - s0.started, 0, 'no thread started: the prewarmed one served all six streams');
  assert.is(s1.reused - s0.reused, 6);
  assert.is(s1.idle, 1);

  // an apply cut mid-stream (its input fails): the worker is terminated, the next stream starts one
  const cut = join(scratch.root, 'cut');
  fs.mkdirSync(cut);
  const failed = await extractInWorker(cut, (async function* () { yield tar.subarray(0, 700); throw new Error('hang-up'); })(), opts, 'mount')
    .then(() => null, (e: Error) => e);
  assert.is(failed?.message, 'hang-up');
  const s2 = streamWorkerStats();
  assert.is(s2.idle, 0, 'the cut stream\'s worker went back to no pool');
  const root = join(scratch.root, 'after');
  fs.mkdirSync(root);
  await extractInWorker(root, (async function* () { yield tar; })(), opts, 'mount');
  const s3 = streamWorkerStats();
  assert.is(s3.started - s2.started, 1);
  assert.is(s3.idle, 1);

  // an export destroyed before its end (a client hang-up): not reused either
  const big = join(scratch.root, 'big');
  fs.mkdirSync(big);
  for (let i = 0; i < 64; i++) fs.writeFileSync(join(big, `f${i}`), Buffer.alloc(256 << 10, i));
  const s = exportInWorker(big, opts);
  await new Promise<void>((r) => s.once('data', () => r()));
  await new Promise<void>((r) => { s.once('close', () => r()); s.destroy(); });
  assert.is(streamWorkerStats().idle, 0);
});

test.run();
