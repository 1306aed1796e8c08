// The plugin's warm stream workers seen from outside: the installed bin on its socket, read through
// its --log-level debug lines (a Diff's or ApplyDiff's line ends with the pool's counts). Streams one
// after another are all served by the worker Init started, none is started per stream; a stream that
// failed (a malformed tar: 400) costs its worker, and the next stream works on a new one.
// test/stream-worker-pool.test.ts checks the pool as a module; this checks the bin wires it up.
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountTest, scratchRoot } from './support/env.js';
import { graphDriverCall, pluginCall, startPluginProcess, type PluginProcess } from './support/plugin-client.js';
import { CLI_BIN } from './support/cli.js';

const test = mountTest(uvuTest);
const FILES = 5;
/** ApplyDiffs and Diffs alternated: enough that a thread started per stream shows in the counts. */
const ROUNDS = 3;
let scratch: ReturnType<typeof scratchRoot>;
let plugin: PluginProcess;
/** The layer `src` as Diff sends it, applied by every ApplyDiff below. */
let layerTar: Buffer;

const call = (method: string, body: object) => graphDriverCall(plugin.socket, method, body);

interface StreamLine { method: string; layer: string; outcome: string; started: number; reused: number; idle: number }
const STREAM_LINE = /^overlay2 plugin: (GraphDriver\.(?:Diff|ApplyDiff)) (\S+): (.*); stream workers: started (\d+), reused (\d+), idle (\d+)$/gm;

function streamLines(): StreamLine[] {
  return [...plugin.stderr().matchAll(STREAM_LINE)].map((m) => ({
    method: m[1]!, layer: m[2]!, outcome: m[3]!, started: Number(m[4]), reused: Number(m[5]), idle: Number(m[6]),
  }));
}

/** The n-th stream's line (1-based). The plugin writes it once that stream's worker is back in the
 *  pool or ended, so waiting for it makes the next stream find the pool as the line shows it (a
 *  client reads a Diff's last byte a moment before its worker is back: dockerd's next stream may
 *  then start a thread, which is the pool working as meant but not a count to assert). */
async function streamLine(n: number): Promise<StreamLine> {
  for (let waited = 0; waited < 10_000; waited += 10) {
    const lines = streamLines();
    if (lines.length >= n) return lines[n - 1]!;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no log line for stream ${n}; the plugin wrote:\n${plugin.stderr()}`);
}

async function diff(id: string): Promise<Buffer> {
  const r = await pluginCall(plugin.socket, '/GraphDriver.Diff', { ID: id, Parent: 'base' });
  assert.is(r.status, 200, `Diff ${id}: ${r.text.slice(0, 200)}`);
  return r.body;
}

async function applyDiff(id: string, tar: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  await call('Create', { ID: id, Parent: 'base' });
  return pluginCall(plugin.socket, `/GraphDriver.ApplyDiff?id=${id}&parent=base`, tar);
}

test.before(async () => {
  scratch = scratchRoot('ovl2-plugin-stream-workers-');
  plugin = await startPluginProcess(join(scratch.root, 'home'), join(scratch.root, 'p.sock'), CLI_BIN, { args: ['--log-level', 'debug'] });
  await call('Create', { ID: 'base', Parent: '' });
  await call('CreateReadWrite', { ID: 'src', Parent: 'base' });
  const dir = (await call('Get', { ID: 'src' })).Dir as string;
  mkdirSync(join(dir, 'd'));
  for (let i = 0; i < FILES; i++) writeFileSync(join(dir, 'd', `f${i}`), `file ${i}\n`.repeat(100));
  await call('Put', { ID: 'src' });
});
test.after(async () => {
  await plugin?.stop();
  scratch?.remove();
});

test('streams one after another all run on the worker Init started', async () => {
  layerTar = await diff('src');
  let streams = 1;
  assert.is((await streamLine(streams)).layer, 'src');
  for (let i = 0; i < ROUNDS; i++) {
    const applied = await applyDiff(`copy${i}`, layerTar);
    assert.is(applied.status, 200);
    assert.ok((applied.json.Size as number) > 0);
    assert.is((await streamLine(++streams)).layer, `copy${i}`);
    assert.ok((await diff(`copy${i}`)).length >= FILES * 1024);
    await streamLine(++streams);
  }
  const lines = streamLines();
  assert.equal(lines.map((l) => l.outcome.split(' ')[0]), Array(streams).fill('200'));
  const last = lines[lines.length - 1]!;
  assert.is(last.started, 1, `no thread started after Init's (${JSON.stringify(last)})`);
  assert.is(last.reused, streams, `every stream found a warm worker (${JSON.stringify(last)})`);
  assert.is(last.idle, 1);
});

test('a stream that failed costs its worker; the next stream works on a new one', async () => {
  const before = streamLines().length;
  const counts = await streamLine(before);
  // no compression's magic, so read as a tar: the first header's checksum is wrong
  const malformed = Buffer.concat([Buffer.alloc(512, 0x78), Buffer.alloc(1024)]);
  const refused = await applyDiff('malformed', malformed);
  assert.is(refused.status, 400);
  assert.match(String(refused.json.Err), /bad archive/);
  const failed = await streamLine(before + 1);
  assert.match(failed.outcome, /^400: /);
  assert.is(failed.idle, 0, `the failed stream's worker was ended, not kept (${JSON.stringify(failed)})`);

  const applied = await applyDiff('after', layerTar);
  assert.is(applied.status, 200);
  const next = await streamLine(before + 2);
  assert.is(next.started, counts.started + 1, `a new thread for the next stream (${JSON.stringify(next)})`);
  assert.is(next.idle, 1, 'and that one kept warm');
  const dir = (await call('Get', { ID: 'after' })).Dir as string;
  assert.is(readFileSync(join(dir, 'd', `f${FILES - 1}`), 'utf8'), `file ${FILES - 1}\n`.repeat(100));
  await call('Put', { ID: 'after' });

  await diff('after');
  const reusedAgain = await streamLine(before + 3);
  assert.is(reusedAgain.started, next.started);
  assert.is(reusedAgain.reused, next.reused + 1);
});

test.run();
