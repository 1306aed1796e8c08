// What keeps a 10,000-layer home as quick as a 10-layer one (#24 part 1), reached as users reach it
// (the installed bin): init looks into layer dirs only after a user of the home died mid-work
// (src/layout/home-users.ts), and remove() asks the child index which layers are built on a layer
// (src/layout/child-index.ts) — which must stay right when Docker, a crash or a forced remove
// changed the home behind it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import { isRoot, removeTree, tempDir, testIf } from './support/env.js';
import { dir, file, tarOf } from './apply-tar.js';
import { Overlay2Driver } from '../src/driver.js';
import { ChildIndex, CHILDREN_DIR } from '../src/layout/child-index.js';
import { LayerStore } from '../src/layout/store.js';

const maybe = testIf(isRoot, 'home-scale tests', 'not running as root');
const base = tempDir('ovl2-home-scale-');

function cli(home: string, args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const users = (home: string): Record<string, string> => JSON.parse(readFileSync(join(home, '.refs', '.users'), 'utf8'));
const staging = (layer: string) => readdirSync(layer).filter((n) => n.startsWith('.staging-diff-'));

maybe('a user that exits cleanly leaves the users record; one killed mid-apply makes the next write command sweep', async () => {
  const home = join(base, 'crash');
  assert.is(cli(home, ['create', 'a']).code, 0);
  assert.equal(users(home), {}, 'the CLI took itself out when it exited');

  // kill -9 an apply half-way through its tar
  const members: Buffer[] = [];
  for (let d = 0; d < 10; d++) {
    members.push(dir(`d${d}/`));
    for (let f = 0; f < 500; f++) members.push(file(`d${d}/f${f}`, 'x'.repeat(100)));
  }
  const tar = tarOf(...members);
  const child = spawn(process.execPath, [CLI_BIN, '--home', home, 'apply', 'a', '-q'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin.on('error', () => { /* EPIPE once it is killed */ });
  child.stdin.write(tar.subarray(0, tar.length >> 1));
  const end = Date.now() + 120_000;
  while (!(staging(join(home, 'a')).length === 1 && existsSync(join(home, 'a', staging(join(home, 'a'))[0]!, 'd3')))) {
    if (Date.now() > end) { child.kill('SIGKILL'); throw new Error('the apply never started'); }
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(String(child.pid) in users(home), 'the killed process is still recorded: it never left');

  const ls = cli(home, ['ls']);
  assert.match(ls.err, /layer a is incomplete: an apply into it was interrupted/);
  assert.is(cli(home, ['exists', 'a']).code, 2);

  assert.is(cli(home, ['create', 'b']).code, 0);
  assert.equal(staging(join(home, 'a')), [], 'the write command swept what the killed apply left');
  assert.equal(users(home), {}, 'and the dead user is gone from the record');
  assert.is(cli(home, ['exists', 'a']).code, 0);
  assert.is(cli(home, ['ls']).err, '');

  // After clean exits nothing is looked for: a staging dir with a dead owner planted by hand (which
  // no clean exit leaves) stays, where every init used to open every layer dir.
  const planted = join(home, 'a', '.staging-diff-999999999-1-planted');
  mkdirSync(planted);
  assert.is(cli(home, ['create', 'c']).code, 0);
  assert.ok(existsSync(planted), 'a home whose users all left cleanly is not walked');
  assert.equal(cli(home, ['apply', 'a', '-q'], tarOf(file('late', 'y'))).code, 0, 'and the layer is still usable');

  // What outlives the sweep is found without a dead user: .incomplete (an interrupted import through
  // a mount into a layer that had content), looked up for every layer in one batched call; a dir
  // without a link file is not a layer.
  writeFileSync(join(home, 'c', '.incomplete'), '');
  mkdirSync(join(home, 'notalayer'));
  const after = cli(home, ['ls']);
  assert.equal(after.out.split('\n').filter(Boolean), ['a', 'b', 'c']);
  assert.match(after.err, /^overlay2: layer c is incomplete: an import through its mount was interrupted/);
  assert.not.match(after.err, /layer [ab] /);
  const rows = JSON.parse(cli(home, ['ls', '--json']).out) as { id: string; incomplete?: string }[];
  assert.equal(rows.filter((r) => r.incomplete).map((r) => r.id), ['c']);
});

maybe('a second driver opened in the same process leaves .partial alone while the first has work in flight', async () => {
  const home = join(base, 'two-drivers');
  const first = await Overlay2Driver.init(home);
  await first.create('a');
  const inProgress = join(home, '.partial', 'in-progress');
  mkdirSync(inProgress); // what the first driver's create or remove holds while it runs
  let finish!: () => void;
  const held = new Promise<void>((r) => { finish = r; });
  const tar = tarOf(file('f', 'x'));
  const apply = first.applyDiff('a', '', (async function* () { yield tar.subarray(0, 512); await held; yield tar.subarray(512); })());
  await new Promise((r) => setTimeout(r, 50));
  const second = await Overlay2Driver.init(home);
  assert.ok(existsSync(inProgress), 'not swept while the first driver applies');
  finish();
  await apply;
  assert.ok(await second.exists('a'));
  await Overlay2Driver.init(home);
  assert.not.ok(existsSync(inProgress), 'swept once no driver of the process has work in flight');
});

/** A layer made the way Docker's overlay2 Create makes one (no entry in our child index). */
function dockerCreate(home: string, id: string, parent: string): void {
  const linkId = `DOCKER${id.toUpperCase()}`.padEnd(26, 'X').slice(0, 26);
  mkdirSync(join(home, id, 'diff'), { recursive: true });
  symlinkSync(join('..', id, 'diff'), join(home, 'l', linkId));
  writeFileSync(join(home, id, 'link'), linkId);
  const parentLink = readFileSync(join(home, parent, 'link'), 'utf8');
  const parentLower = existsSync(join(home, parent, 'lower')) ? ':' + readFileSync(join(home, parent, 'lower'), 'utf8') : '';
  writeFileSync(join(home, id, 'lower'), `l/${parentLink}${parentLower}`);
  mkdirSync(join(home, id, 'work'));
}

maybe('remove knows a layer\'s children from the index, and from the lower files after Docker, a forced remove or a lost stamp', () => {
  const home = join(base, 'children');
  for (const [id, parent] of [['p', ''], ['c', 'p'], ['g', 'c']] as const) {
    assert.is(cli(home, ['create', id, ...(parent ? ['--parent', parent] : [])]).code, 0);
  }
  const pLink = readFileSync(join(home, 'p', 'link'), 'utf8');
  assert.equal(readdirSync(join(home, CHILDREN_DIR, pLink)), ['c'], 'c is listed under p\'s link');
  let r = cli(home, ['remove', 'p']);
  assert.is(r.code, 1);
  assert.match(r.err, /layer p has 2 child layers \(c, g\)/);

  // Docker adds a layer on g behind the index's back: l/ changed, so the index is made again
  dockerCreate(home, 'dock', 'g');
  r = cli(home, ['remove', 'g']);
  assert.is(r.code, 1);
  assert.match(r.err, /layer g has 1 child layer \(dock\)/);

  // c removed with force: g (and dock above it) still name p's link, and p still refuses
  assert.is(cli(home, ['remove', 'c', '--force']).code, 0);
  r = cli(home, ['remove', 'p']);
  assert.is(r.code, 1);
  assert.match(r.err, /layer p has 2 child layers \(dock, g\)/);

  // a lost stamp: rebuilt from the lower files, same answer
  rmSync(join(home, CHILDREN_DIR, '.stamp'));
  r = cli(home, ['remove', 'p']);
  assert.match(r.err, /layer p has 2 child layers \(dock, g\)/);

  // an entry naming a layer that is not there (or does not name the link) is not a child
  assert.is(cli(home, ['remove', 'dock']).code, 0);
  assert.is(cli(home, ['remove', 'g']).code, 0);
  symlinkSync('.', join(home, CHILDREN_DIR, pLink, 'ghost'));
  assert.is(cli(home, ['remove', 'p']).code, 0);
  assert.equal(cli(home, ['ls']).out, '');
  assert.not.ok(existsSync(join(home, CHILDREN_DIR, pLink)), 'p\'s list went with it');
});

maybe('the child index answers as every lower file does, through creates and removes in any order', async () => {
  const home = join(base, 'random');
  const d = await Overlay2Driver.init(home);
  const store = new LayerStore(home);
  const index = new ChildIndex(store);
  let seed = 7;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const live: string[] = [];
  for (let step = 0; step < 300; step++) {
    if (live.length > 0 && rand(3) === 0) {
      const victim = live[rand(live.length)]!;
      await d.remove(victim, { force: rand(4) === 0 }).then(() => live.splice(live.indexOf(victim), 1), () => undefined);
    } else {
      const id = `L${step}`;
      await d.create(id, live.length > 0 && rand(5) !== 0 ? live[rand(live.length)]! : '');
      live.push(id);
    }
  }
  assert.ok(index.current(), 'every change was made under the lock: the index is current');
  for (const id of live) {
    const link = readFileSync(join(home, id, 'link'), 'utf8');
    assert.equal(index.layersAbove(link), store.layersAboveSync(id, link), `the layers above ${id}`);
  }
  await d.cleanup();
});

test.after(() => removeTree(base));
test.run();
