// changesStream: the change list handed out as the native walk writes it. The same list as
// changes() — native, naive, and a native walk that hands over to the naive list part way —, the
// CLI's changes output (through the installed bin) and the plugin's Changes body byte for byte what
// the whole list gave, and the walk's memory bounded on a 200k-file upper (a child process).
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, chmodSync, utimesSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import type { Change } from '../src/changes/change.js';
import { changesToWire } from '../src/plugin/protocol.js';
import { servePlugin } from '../src/plugin/index.js';
import { loadShim } from '../src/native/shim.js';
import { escapeBytes } from '../src/util/byte-names.js';
import { mountTest, tempDir, removeTree } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { pluginCall } from './support/plugin-client.js';

const test = mountTest(uvuTest);
let base = '';
let driver: Overlay2Driver;
const lines = (cs: Change[]) => cs.map((c) => `${c.kind} ${c.path}`);

/** Over 64 KiB of output (the walk's chunk): several chunks. */
const MANY = 6000;

function touchAll(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) touchAll(join(dir, e.name));
    utimesSync(join(dir, e.name), 1_600_000_000, 1_600_000_000);
  }
}

async function edit(id: string, fn: (m: string) => void): Promise<void> {
  const m = await driver.get(id);
  try {
    fn(m);
  } finally {
    await driver.put(id);
  }
}

test.before(async () => {
  base = tempDir('ovl2-changes-stream-');
  driver = await Overlay2Driver.init(join(base, 'home'));
  await driver.create('base');
  const d = join(driver.home, 'base', 'diff');
  // lib, lib-x and lib.d: names that sort between "lib" and "lib/"
  for (const dir of ['etc', 'lib', 'lib-x', 'lib.d', 'data', 'opq']) mkdirSync(join(d, dir));
  for (const f of ['etc/hosts', 'etc/passwd', 'lib/a.so', 'lib-x/x', 'lib.d/conf', 'opq/one', 'opq/two']) writeFileSync(join(d, f), f);
  for (let i = 0; i < 200; i++) writeFileSync(join(d, 'data', `f${i}`), `${i}`);
  touchAll(d);
  await driver.create('mid', 'base');
  await edit('mid', (m) => {
    writeFileSync(join(m, 'etc/mid'), 'm');
    rmSync(join(m, 'data/f7'));
  });
  await driver.create('top', 'mid');
  await edit('top', (m) => {
    mkdirSync(join(m, 'new'));
    for (let i = 0; i < MANY; i++) writeFileSync(join(m, 'new', `file-${String(i).padStart(5, '0')}`), '');
    writeFileSync(join(m, 'lib/b.so'), 'b');
    writeFileSync(join(m, 'lib.d/conf'), 'changed');
    chmodSync(join(m, 'etc/passwd'), 0o600);
    rmSync(join(m, 'data/f9'));
    rmSync(join(m, 'opq'), { recursive: true });
    mkdirSync(join(m, 'opq'));
    writeFileSync(join(m, 'opq/two'), 'again');
  });
});

test.after(async () => {
  await driver?.cleanup();
  if (base) removeTree(base);
});

async function byChange(id: string, parent: string): Promise<Change[]> {
  const out: Change[] = [];
  for await (const c of driver.changesStream(id, parent)) out.push(c);
  return out;
}

async function byChunk(id: string, parent: string): Promise<Change[][]> {
  const out: Change[][] = [];
  for await (const chunk of driver.changesStream(id, parent).chunks()) out.push(chunk);
  return out;
}

test('native: the stream, by change and by chunk, is changes(), which is the naive comparison', async () => {
  const whole = await driver.changes('top', 'mid');
  assert.ok(whole.length > MANY, `${whole.length} changes`);
  assert.equal(lines(whole), lines(await driver.changesNaive('top', 'mid')));
  assert.equal(lines(await byChange('top', 'mid')), lines(whole));
  const chunks = await byChunk('top', 'mid');
  assert.ok(chunks.length >= 2, `${chunks.length} chunks`);
  assert.equal(lines(chunks.flat()), lines(whole));
  assert.equal(chunks.flat().map((c) => c.pathBytes.toString('latin1')), whole.map((c) => c.pathBytes.toString('latin1')));
  for (const want of ['C /lib', 'A /lib/b.so', 'C /lib.d', 'C /lib.d/conf', 'C /opq', 'D /opq/one', 'C /opq/two', 'D /data/f9']) {
    assert.ok(lines(whole).includes(want), want);
  }
});

test('naive (parent not the direct one): the stream is changes()', async () => {
  const whole = await driver.changes('top', 'base');
  assert.ok(lines(whole).includes('D /data/f7'), 'mid\'s change is in it');
  assert.equal(lines(await byChange('top', 'base')), lines(whole));
});

test('a redirect met part way: the native chunks already handed out, then the rest of the naive list', async () => {
  await driver.create('redir', 'mid');
  await edit('redir', (m) => {
    mkdirSync(join(m, 'a'));
    for (let i = 0; i < MANY; i++) writeFileSync(join(m, 'a', `f${String(i).padStart(5, '0')}`), '');
    mkdirSync(join(m, 'b/zz'), { recursive: true });
  });
  // a mark is seen where its parent is listed: b/ is listed once a/ is done
  loadShim().lsetxattr(join(driver.home, 'redir', 'diff', 'b', 'zz'), 'trusted.overlay.redirect', '/elsewhere', 0);
  const naive = await driver.changesNaive('redir', 'mid');
  const chunks = await byChunk('redir', 'mid');
  assert.ok(chunks.length >= 2 && chunks[0]!.length < naive.length, 'the native walk handed out a chunk first');
  assert.equal(lines(chunks.flat()), lines(naive));
  assert.equal(lines(await driver.changes('redir', 'mid')), lines(naive));
});

test('errors come at the first next(), as changes() throws them', async () => {
  let caught: unknown = null;
  try { await byChange('nope', 'mid'); } catch (e) { caught = e; }
  assert.is((caught as { code?: string }).code, 'ERR_LAYER_NOT_FOUND');
});

test('the CLI writes what the whole list gave, text and --json', async () => {
  const whole = await driver.changes('top', 'mid');
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI_BIN, '--home', driver.home, 'changes', 'top', '--parent', 'mid', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const text = run();
  assert.is(text.status, 0, text.stderr);
  assert.is(text.stdout, whole.map((c) => `${c.kind} ${c.path}\n`).join(''));
  const json = run('--json');
  assert.is(json.status, 0, json.stderr);
  assert.is(json.stdout, JSON.stringify(whole.map((c) => ({ path: escapeBytes(c.pathBytes), kind: c.kind }))) + '\n');
  const none = spawnSync(process.execPath, [CLI_BIN, '--home', driver.home, 'changes', 'mid', '--parent', 'mid', '--json'], { encoding: 'utf8' });
  assert.is(none.status, 0, none.stderr);
});

test("the plugin's Changes body is the whole list's JSON, byte for byte; a missing layer is still an Err", async () => {
  const whole = await driver.changes('top', 'mid');
  const socket = join(base, 'p.sock');
  const plugin = await servePlugin({ name: 'overlay2-stream-test', socket, graceMs: 200 });
  try {
    const init = await pluginCall(socket, '/GraphDriver.Init', { Home: driver.home, Opts: [], UIDMaps: null, GIDMaps: null });
    assert.is(init.status, 200, init.text);
    const r = await pluginCall(socket, '/GraphDriver.Changes', { ID: 'top', Parent: 'mid' });
    assert.is(r.status, 200);
    assert.is(r.text, JSON.stringify({ Changes: changesToWire(whole) }) + '\n');
    const empty = await pluginCall(socket, '/GraphDriver.Changes', { ID: 'base', Parent: '' });
    assert.is(empty.status, 200);
    assert.is(empty.text, JSON.stringify({ Changes: changesToWire(await driver.changes('base', '')) }) + '\n');
    const missing = await pluginCall(socket, '/GraphDriver.Changes', { ID: 'nope', Parent: '' });
    assert.is(missing.status, 500);
    assert.match(String(missing.json.Err), /nope/);
  } finally {
    await plugin.close();
  }
});

test('memory: a 200k-file upper walked in a fresh process stays within bounds the whole list would pass', async () => {
  const dir = tempDir('ovl2-changes-200k-');
  try {
    const upper = join(dir, 'upper');
    const lower = join(dir, 'lower');
    mkdirSync(upper);
    mkdirSync(lower);
    const DIRS = 200, FILES = 1000;
    for (let i = 0; i < DIRS; i++) {
      const sub = `d${String(i).padStart(3, '0')}`;
      mkdirSync(join(upper, sub));
      // every tenth directory is also in the lower: those are looked up (and are C)
      if (i % 10 === 0) {
        mkdirSync(join(lower, sub));
        writeFileSync(join(lower, sub, 'old'), 'o');
      }
      for (let k = 0; k < FILES; k++) closeSync(openSync(join(upper, sub, `f${k}`), 'w'));
    }
    const child = join(process.cwd(), 'dist', 'test', 'support', 'changes-memory-child.js');
    const r = spawnSync(process.execPath, [child, upper, lower], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { changes: number; last: string; wasmBytes: number; hwmKiB: number };
    assert.is(got.changes, DIRS * FILES + DIRS - DIRS / 10 + DIRS / 10);
    assert.is(got.last, '/d199/f999');
    // the whole list took ~0.85 KiB a change (bench/RESULTS.md): ~170 MiB here, the core's tree and
    // paths alone over 40 MiB. Bounded, the core stays at its first few MiB and the process near
    // Node's own floor (~40 MiB).
    console.error(`  200k-file upper: WASM memory ${(got.wasmBytes / 1048576).toFixed(1)} MiB, peak RSS ${(got.hwmKiB / 1024).toFixed(1)} MiB`);
    assert.ok(got.wasmBytes <= 16 * 1024 * 1024, `WASM memory ${got.wasmBytes} bytes`);
    assert.ok(got.hwmKiB < 110 * 1024, `peak RSS ${got.hwmKiB} KiB`);
  } finally {
    removeTree(dir);
  }
});

test.run();
