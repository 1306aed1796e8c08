// Safe homes: what init refuses before touching anything, what it never changes, and what a
// read-only open leaves alone; the feature cache; remove() of a layer with children.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { mkdirSync, writeFileSync, statSync, chmodSync, readdirSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { FEATURE_CACHE_FILE } from '../src/feature-cache.js';
import { mountTest, scratchRoot, rejectsWithCode } from './support/env.js';

const test = mountTest(uvuTest);
let scratch: ReturnType<typeof scratchRoot>;
test.before(() => { scratch = scratchRoot('ovl2-home-'); });
test.after(() => scratch.remove());

test('pseudo filesystems are refused before anything is touched, and fast', async () => {
  for (const [home, fs] of [['/proc', 'proc'], ['/proc/sys/ovl2-nope', 'proc'], ['/sys/fs/ovl2-nope', 'sysfs'], ['/dev/ovl2-nope', 'devtmpfs']] as const) {
    if (!existsSync(home.split('/').slice(0, 2).join('/'))) continue;
    const modeBefore = statSync('/proc').mode;
    const started = performance.now();
    const e = await rejectsWithCode(() => Overlay2Driver.init(home), 'ERR_INCOMPATIBLE_FS');
    assert.ok(performance.now() - started < 5000, 'refused without walking anything');
    assert.match(e.message, new RegExp(`${home}.* on ${fs}`));
    assert.is(statSync('/proc').mode, modeBefore);
    assert.not.ok(existsSync(home) && home !== '/proc');
  }
  // cgroup hierarchies wherever this machine mounts them (mkdir there would create a cgroup)
  const cgroups = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .filter((l) => / - cgroup2? /.test(l)).map((l) => l.split(' ')[4]!).slice(0, 2);
  for (const cgroup of cgroups) {
    const e = await rejectsWithCode(() => Overlay2Driver.init(join(cgroup, 'ovl2-nope')), 'ERR_INCOMPATIBLE_FS');
    assert.match(e.message, /on cgroup2?,/);
    assert.not.ok(existsSync(join(cgroup, 'ovl2-nope')));
  }
});

test('a non-empty directory that is not a store is refused, one line, untouched', async () => {
  const dir = scratch.fresh();
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'precious.txt'), 'keep me');
  const e = await rejectsWithCode(() => Overlay2Driver.init(dir), 'ERR_NOT_A_STORE');
  assert.match(e.message, /not empty and is not an overlay2 store/);
  assert.match(e.message, /precious\.txt/);
  assert.not.match(e.message, /\n/);
  assert.equal(readdirSync(dir), ['precious.txt']);
  assert.is(statSync(dir).mode & 0o777, 0o755);
  await rejectsWithCode(() => Overlay2Driver.init(join(dir, 'precious.txt')), 'ERR_NOT_A_STORE');
});

test('an existing empty directory becomes a store without its mode changing; a new one gets 0710', async () => {
  const dir = scratch.fresh();
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'lost+found'));
  const d = await Overlay2Driver.init(dir);
  await d.create('a');
  assert.is(statSync(dir).mode & 0o777, 0o755, 'mode of a directory we did not create is kept');
  assert.ok(statSync(join(dir, 'l')).isDirectory());
  const fresh = join(scratch.fresh(), 'new', 'home');
  await Overlay2Driver.init(fresh);
  assert.is(statSync(fresh).mode & 0o777, 0o710);
  assert.is(statSync(join(fresh, 'l')).mode & 0o777, 0o700);
  // reopening a store chmods nothing either
  chmodSync(fresh, 0o750);
  await Overlay2Driver.init(fresh);
  assert.is(statSync(fresh).mode & 0o777, 0o750);
});

test('a read-only open creates nothing: missing or empty homes are ERR_NOT_A_STORE', async () => {
  const parent = scratch.fresh();
  const missing = join(parent, 'missing');
  const e = await rejectsWithCode(() => Overlay2Driver.init(missing, [], { readOnly: true }), 'ERR_NOT_A_STORE');
  assert.match(e.message, /no driver home/);
  assert.not.ok(existsSync(missing));
  const empty = scratch.fresh();
  await rejectsWithCode(() => Overlay2Driver.init(empty, [], { readOnly: true }), 'ERR_NOT_A_STORE');
  assert.equal(readdirSync(empty), []);

  const home = join(scratch.fresh(), 'h');
  const w = await Overlay2Driver.init(home);
  await w.create('base');
  await w.create('kid', 'base');
  rmSync(join(home, FEATURE_CACHE_FILE)); // a cache miss: the probes run, and leave nothing behind
  const before = readdirSync(home).sort();
  const r = await Overlay2Driver.init(home, [], { readOnly: true });
  assert.ok(await r.exists('kid'));
  assert.equal(await r.list(), ['base', 'kid']);
  assert.is(r.status()[0]![0], 'Backing Filesystem');
  await r.getMetadata('kid');
  await r.changes('kid', 'base');
  assert.equal(readdirSync(home).sort(), before);
});

test('features are cached per home: a second init reads them instead of probing', async () => {
  const home = join(scratch.fresh(), 'h');
  const first = await Overlay2Driver.init(home);
  const cache = JSON.parse(readFileSync(join(home, FEATURE_CACHE_FILE), 'utf8'));
  assert.is(cache.key.dev, statSync(home).dev);
  assert.is(cache.features.nativeDiff, first.features.nativeDiff);
  // a planted answer is believed while the key matches...
  cache.features.backingFs = 'planted';
  writeFileSync(join(home, FEATURE_CACHE_FILE), JSON.stringify(cache));
  assert.is((await Overlay2Driver.init(home)).features.backingFs, 'planted');
  // ...and re-probed when it does not (another kernel)
  cache.key.kernel = '1.2.3-other';
  writeFileSync(join(home, FEATURE_CACHE_FILE), JSON.stringify(cache));
  assert.is((await Overlay2Driver.init(home)).features.backingFs, first.features.backingFs);
});

test('remove refuses a layer with children unless force', async () => {
  const home = join(scratch.fresh(), 'h');
  const d = await Overlay2Driver.init(home);
  await d.create('p');
  await d.create('c1', 'p');
  await d.create('g', 'c1');
  const e = await rejectsWithCode(() => d.remove('p'), 'ERR_LAYER_HAS_CHILDREN');
  assert.match(e.message, /layer p has 2 child layers \(c1, g\)/);
  assert.ok(await d.exists('p'));
  await d.remove('g');
  await d.remove('c1');
  await d.remove('p');
  await d.create('p2');
  await d.create('c2', 'p2');
  await d.remove('p2', { force: true });
  assert.not.ok(await d.exists('p2'));
});

test.run();
