// Several processes on one home (the shared mount references of src/mount/shared-refs.ts), each a
// real node process (test/support/refs-child.ts): the 0→1 mount and 1→0 unmount are one step for
// every other process, load from two processes leaks nothing, and remove() refuses a layer another
// live process holds.
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { buildOciLayout } from './image-fixtures.js';
import { Overlay2Driver } from '../src/driver.js';
import { isMountReferenced } from '../src/mount/shared-refs.js';
import { mountTest, scratchRoot, isMounted, rejectsWithCode } from './support/env.js';
import { CLI_BIN } from './support/cli.js';

const test = mountTest(uvuTest);
const scratch = scratchRoot('ovl2-procs-');
test.after(() => scratch.remove());
const CHILD = new URL('./support/refs-child.js', import.meta.url).pathname;

interface ChildReport { failures: string[]; bad: number; errors: number; ebusy: number; pid: number }
interface Running { child: ChildProcess; ready: Promise<void>; report: Promise<ChildReport>; go(): void; kill(): Promise<void> }

function run(mode: string, home: string, ...args: string[]): Running {
  const child = spawn(process.execPath, [CHILD, mode, home, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (b: Buffer) => { out += b; });
  child.stderr!.on('data', (b: Buffer) => { err += b; });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => { if (out.includes('ready\n')) resolve(); });
    child.once('exit', (code) => reject(new Error(`${mode} child exited ${code} before ready: ${err}`)));
  });
  const report = new Promise<ChildReport>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const line = out.split('\n').find((l) => l.startsWith('{"failures"'));
      if (line) resolve(JSON.parse(line) as ChildReport);
    });
    child.once('exit', (code) => reject(new Error(`${mode} child exited ${code} without a report: ${err}`)));
  });
  return {
    child, ready, report,
    go: () => { child.stdin!.write('go\n'); },
    kill: () => new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGKILL');
    }),
  };
}

function mountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(dir + '/'));
}

/** A home with a base layer and `n` read-write layers c0..c(n-1) on it, each holding a file "own". */
async function homeWith(n: number): Promise<{ home: string; driver: Overlay2Driver; ids: string[] }> {
  const home = join(scratch.fresh(), 'home');
  const driver = await Overlay2Driver.init(home);
  await driver.create('base');
  fs.writeFileSync(join(home, 'base', 'diff', 'shared'), 'base');
  const ids = [...Array(n).keys()].map((i) => `c${i}`);
  for (const id of ids) {
    await driver.createReadWrite(id, 'base');
    fs.writeFileSync(join(home, id, 'diff', 'own'), id);
  }
  return { home, driver, ids };
}

async function together(children: Running[]): Promise<ChildReport[]> {
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.go();
  return Promise.all(children.map((c) => c.report));
}

const ROUNDS = Number(process.env.REFS_ROUNDS ?? 400);

test(`two processes get/put one layer ${ROUNDS} times each: every get returns a mounted overlay`, async () => {
  const { home, ids } = await homeWith(1);
  const started = Date.now();
  const reports = await together([run('rounds', home, ids[0]!, String(ROUNDS)), run('rounds', home, ids[0]!, String(ROUNDS))]);
  console.error(`   rounds: 2 x ${ROUNDS} get/check/put of one layer: ${reports.reduce((n, r) => n + r.bad, 0)} bad gets/errors in ${Date.now() - started} ms`);
  assert.equal(reports.flatMap((r) => r.failures), [], 'no get returned an unmounted dir, no error');
  assert.not.ok(isMountReferenced(home, ids[0]!), 'no reference left');
  assert.equal(mountsUnder(home), [], 'no mount left');
});

const OPS = Number(process.env.REFS_OPS ?? 500);

test(`two processes, ${OPS} concurrent get/put each over 50 shared ids: 0 failures, 0 EBUSY, 0 leaks`, async () => {
  const { home, ids } = await homeWith(50);
  const started = Date.now();
  const reports = await together([
    run('load', home, String(OPS), '1', ids.join(',')),
    run('load', home, String(OPS), '2', ids.join(',')),
  ]);
  console.error(`   load: 2 x ${OPS} concurrent get/put over ${ids.length} ids: ${reports.reduce((n, r) => n + r.bad, 0)} failures, ` +
    `${reports.reduce((n, r) => n + r.ebusy, 0)} EBUSY, ${mountsUnder(home).length} mounts left in ${Date.now() - started} ms`);
  assert.equal(reports.flatMap((r) => r.failures), [], 'every get saw its layer mounted, every put succeeded');
  assert.is(reports.reduce((n, r) => n + r.ebusy, 0), 0, 'no EBUSY');
  for (const id of ids) assert.not.ok(isMountReferenced(home, id), `${id}: no reference left`);
  assert.not.ok(fs.existsSync(join(home, '.refs')) && fs.readdirSync(join(home, '.refs')).some((n) => n.endsWith('.json')),
    'no reference record left');
  assert.equal(mountsUnder(home), [], 'no leaked mount');
});

test('remove() of a layer another live process holds is refused, naming it; --force removes it; a dead holder holds nothing', async () => {
  const { home, driver, ids: [a, b] } = await homeWith(2);
  const holder = run('hold', home, a!);
  await holder.ready;
  holder.go();
  const held = await holder.report;
  assert.equal(held.failures, [], 'the holder has it mounted');
  try {
    const e = await rejectsWithCode(() => driver.remove(a!), 'ERR_LAYER_BUSY');
    assert.match(e.message, new RegExp(`layer ${a} is mounted by process ${held.pid} \\(node\\)`));
    assert.not.ok(e.message.includes('\n'), 'one line');
    assert.ok(await driver.exists(a!), 'still there');
    assert.ok(isMounted(join(home, a!, 'merged')), 'still mounted for its holder');
    assert.is(fs.readFileSync(join(home, a!, 'merged', 'own'), 'utf8'), a);
    // this process's own reference does not stop it (moby's Remove): the mount goes with the layer
    await driver.get(b!);
    await driver.remove(b!);
    assert.not.ok(await driver.exists(b!));
    assert.not.ok(isMountReferenced(home, b!));
    // forced: removed under the holder
    await driver.remove(a!, { force: true });
    assert.not.ok(await driver.exists(a!));
    assert.not.ok(isMountReferenced(home, a!));
  } finally {
    await holder.kill();
  }
  assert.equal(mountsUnder(home), [], 'no mount left');
});

test('remove() after the holder died (kill -9) succeeds; references from `overlay2 mount` refuse it too', async () => {
  const { home, driver, ids: [a, b] } = await homeWith(2);
  const holder = run('hold', home, a!);
  await holder.ready;
  holder.go();
  await holder.report;
  await holder.kill();
  await driver.remove(a!);
  assert.not.ok(await driver.exists(a!));
  const cli = await Overlay2Driver.init(home, [], { mountReferences: 'persistent' });
  await cli.get(b!);
  await cli.get(b!);
  const e = await rejectsWithCode(() => driver.remove(b!), 'ERR_LAYER_BUSY');
  assert.match(e.message, /mounted by 2 references from `overlay2 mount`/);
  await cli.put(b!);
  await cli.put(b!);
  await driver.remove(b!);
  assert.equal(mountsUnder(home), [], 'no mount left');
});

const PARENT_ROUNDS = Number(process.env.REFS_PARENT_ROUNDS ?? 60);

test(`remove() of a parent while another process creates a child on it (${PARENT_ROUNDS} rounds): never both, no stranded child`, async () => {
  const home = join(scratch.fresh(), 'home');
  const driver = await Overlay2Driver.init(home);
  for (let i = 0; i < PARENT_ROUNDS; i++) await driver.create(`p${i}`);
  const child = spawn(process.execPath, [CHILD, 'create-on', home], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr!.on('data', (b: Buffer) => { err += b; });
  const waiters: ((line: string) => void)[] = [];
  child.stdout!.on('data', (b: Buffer) => {
    out += b;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) { const line = out.slice(0, nl); out = out.slice(nl + 1); waiters.shift()?.(line); }
  });
  const nextLine = () => new Promise<string>((resolve, reject) => {
    waiters.push(resolve);
    child.once('exit', (code) => reject(new Error(`create-on child exited ${code}: ${err}`)));
  });
  child.setMaxListeners(0);
  try {
    assert.is(await nextLine(), 'ready');
    child.stdin!.write('go\n');
    const seen = { childWon: 0, removeWon: 0 };
    for (let i = 0; i < PARENT_ROUNDS; i++) {
      const created = nextLine();
      child.stdin!.write(`${i}\n`);
      // vary who gets there first
      await new Promise((r) => setTimeout(r, i % 4));
      let removed = 'ok';
      try { await driver.remove(`p${i}`); } catch (e) { removed = (e as { code?: string }).code ?? String(e); }
      const { code } = JSON.parse(await created) as { code: string };
      if (code === 'ok') {
        assert.is(removed, 'ERR_LAYER_HAS_CHILDREN', `round ${i}: the child was made, so its parent stays`);
        seen.childWon++;
      } else {
        assert.is(code, 'ERR_LAYER_NOT_FOUND', `round ${i}: the create failed because the parent went`);
        assert.is(removed, 'ok', `round ${i}`);
        assert.not.ok(await driver.exists(`k${i}`), `round ${i}: no child`);
        seen.removeWon++;
      }
    }
    child.stdin!.end('end\n');
    console.error(`   parent/child race: ${seen.childWon} children made (parent kept), ${seen.removeWon} parents removed (create refused)`);
  } finally {
    child.kill('SIGKILL');
  }
  // no stranded child: every lower entry of every layer resolves
  for (const id of await driver.list()) {
    const lowerFile = join(home, id, 'lower');
    if (!fs.existsSync(lowerFile)) continue;
    for (const entry of fs.readFileSync(lowerFile, 'utf8').split(':')) {
      assert.ok(fs.existsSync(join(home, entry)), `${id}: lower ${entry} resolves`);
    }
  }
  assert.equal(fs.readdirSync(join(home, '.partial')), [], 'nothing left in .partial');
});

test('a read-write init leaves .partial alone while another live process uses the home (a load spooling stdin)', async () => {
  const home = join(scratch.fresh(), 'home');
  const driver = await Overlay2Driver.init(home);
  await driver.create('base');
  const layout = join(scratch.fresh(), 'layout');
  const image = buildOciLayout(join(layout, '..', 'work'), layout, [{ files: { 'a/': '', 'a/f': 'x\n'.repeat(1000) } }]);
  const archive = execFileSync('tar', ['-cf', '-', '-C', image.layout, '.'], { maxBuffer: 1 << 28 });
  const cli = CLI_BIN;
  const load = spawn(process.execPath, [cli, '--home', home, 'load', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  load.stderr!.on('data', (b: Buffer) => { err += b; });
  const exited = new Promise<number | null>((r) => load.once('exit', (code) => r(code)));
  const partial = join(home, '.partial');
  const spooled = () => (fs.existsSync(partial) ? fs.readdirSync(partial) : []).some((n) => n.startsWith('load-'));
  try {
    load.stdin!.write(archive.subarray(0, archive.length >> 1));
    // the load is spooling into .partial/ ...
    for (let i = 0; i < 3000 && !spooled(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(spooled(), 'the load spools its stream');
    // ... when another process (this one) opens the home read-write
    await Overlay2Driver.init(home);
    assert.ok(spooled(), 'the spool is still there');
    load.stdin!.end(archive.subarray(archive.length >> 1));
    assert.is(await exited, 0, `the load finished: ${err}`);
  } finally {
    load.kill('SIGKILL');
  }
  // once nobody else uses the home, an init sweeps what a killed process left
  fs.mkdirSync(join(partial, 'left-by-a-crash'));
  await Overlay2Driver.init(home);
  assert.equal(fs.readdirSync(partial), [], 'swept');
});

test.run();
