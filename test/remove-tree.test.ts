// removeTree (src/layout/remove-tree.ts, the shim's removeTree): every tree the driver deletes goes
// through directory fds only. Against real filesystems as root: a racer process exchanging a directory
// with a symlink to a victim outside the home (renameat2 RENAME_EXCHANGE) during the three removals it
// can reach (a refused import's staging dir, remove(), the .partial sweep at init) must never touch the
// victim; symlinks are unlinked, not followed; mount points and bind mounts inside a doomed tree are
// not crossed; deep and wide trees go; errors are Node-style.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { removeTree, removeTreeSync } from '../src/layout/remove-tree.js';
import { loadShim, type ShimError } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import { applyLayer } from '../src/apply/apply.js';
import { STAGING_PREFIX } from '../src/apply/staging.js';
import { IdMappings } from '../src/idmap.js';
import { Overlay2Driver } from '../src/driver.js';
import { isRoot, canMountOverlay, whyNotMount, testIf, scratchRoot } from './support/env.js';
import { dir, file, symlink, tarOf } from './apply-tar.js';
import { snapshot } from './support/snapshot.js';

const rootTest = testIf(isRoot, 'remove-tree: bind mounts, chown and the racer tests', 'not running as root');
const driverTest = testIf(canMountOverlay, 'remove-tree: driver races (init probes mount overlay)', whyNotMount);
const shim = loadShim();
const scratch = scratchRoot('ovl2-rmtree-');
test.after(() => scratch.remove());

const TRIALS = 20;
const RACE_FILES = 60;
const racerScript = join(dirname(fileURLToPath(import.meta.url)), 'support', 'exchange-racer.js');

/** A victim dir outside any store: files, a subdir, a read-only file. */
function makeVictim(base: string): string {
  const v = join(base, 'victim');
  fs.mkdirSync(join(v, 'sub'), { recursive: true });
  fs.writeFileSync(join(v, 'hello'), 'precious\n');
  fs.writeFileSync(join(v, 'perm400'), 'also precious\n', { mode: 0o400 });
  for (let i = 0; i < 20; i++) fs.writeFileSync(join(v, 'sub', `v${i}`), `v${i}\n`);
  return v;
}

/** racedir/ with RACE_FILES files, then (last, so no swap can happen before) link -> victim. */
function raceTree(parent: string, victim: string): void {
  fs.mkdirSync(join(parent, 'racedir'), { recursive: true });
  for (let i = 0; i < RACE_FILES; i++) fs.writeFileSync(join(parent, 'racedir', `f${i}`), 'x');
  fs.symlinkSync(victim, join(parent, 'link'));
}

interface Racer { child: ChildProcess; stop(): Promise<number> }

async function startRacer(where: string, stopFile: string): Promise<Racer> {
  const child = spawn(process.execPath, [racerScript, where, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: string) => { out += d; if (out.includes('ready\n')) resolve(); });
    child.once('exit', (code) => reject(new Error(`racer exited early (${code})`)));
  });
  return {
    child,
    async stop() {
      fs.writeFileSync(stopFile, '');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      return Number(out.split('\n').filter(Boolean).pop());
    },
  };
}

function expectShimError(e: unknown, code: string, syscall: string, path: string): void {
  assert.ok(e instanceof Error, `expected ${code}, got ${String(e)}`);
  const err = e as ShimError;
  assert.is(err.code, code, err.message);
  assert.is(err.errno, -(os.constants.errno as Record<string, number>)[code]);
  assert.is(err.syscall, syscall);
  assert.is(err.path, path);
  assert.ok(err.message.startsWith(`${code}: `) && err.message.includes(`, ${syscall} '${path}'`), err.message);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (e) { return e; }
  return undefined;
}

// ---- the symlink-exchange race -------------------------------------------------------------------

rootTest('race: staging cleanup after a refused import never deletes outside the layer', async () => {
  const base = scratch.fresh();
  const victim = makeVictim(base);
  const before = snapshot(victim);
  const layer = join(base, 'layer');
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  const members = [dir('racedir/')];
  for (let i = 0; i < RACE_FILES; i++) members.push(file(`racedir/f${i}`, 'x'));
  const tar = tarOf(...members, symlink('link', victim), file('../refused', 'x'));
  const racer = await startRacer(`staging:${layer}`, join(base, 'stop'));
  try {
    for (let t = 0; t < TRIALS; t++) {
      const e = await rejection(applyLayer(layer, Readable.from([tar]), { userxattr: false, idMappings: new IdMappings() }));
      assert.is((e as { code?: string })?.code, 'ERR_UNSAFE_ARCHIVE', `trial ${t}: ${String(e)}`);
      assert.is(snapshot(victim), before, `trial ${t}: the victim outside the layer changed`);
      assert.equal(fs.readdirSync(layer).filter((n) => n.startsWith(STAGING_PREFIX)), [], `trial ${t}: staging left`);
    }
  } finally {
    const swaps = await racer.stop();
    console.error(`   staging race: ${TRIALS} trials, ${swaps} exchanges`);
    assert.ok(swaps > 0, 'the racer never exchanged anything: the test proved nothing');
  }
});

driverTest('race: remove() of a layer someone still writes into never deletes outside the home', async () => {
  const base = scratch.fresh();
  const victim = makeVictim(base);
  const before = snapshot(victim);
  const home = join(base, 'home');
  const driver = await Overlay2Driver.init(home);
  const racer = await startRacer(join(home, 'racer', 'diff'), join(base, 'stop'));
  try {
    for (let t = 0; t < TRIALS; t++) {
      await driver.create('racer');
      raceTree(join(home, 'racer', 'diff'), victim);
      await driver.remove('racer');
      assert.is(snapshot(victim), before, `trial ${t}: the victim outside the home changed`);
      assert.not.ok(fs.existsSync(join(home, 'racer')), `trial ${t}: layer dir left`);
      assert.equal(fs.readdirSync(join(home, '.partial')), [], `trial ${t}: .partial not empty`);
    }
  } finally {
    const swaps = await racer.stop();
    console.error(`   remove() race: ${TRIALS} trials, ${swaps} exchanges`);
    assert.ok(swaps > 0, 'the racer never exchanged anything: the test proved nothing');
  }
});

driverTest('race: the .partial sweep at init never deletes outside the home', async () => {
  const base = scratch.fresh();
  const victim = makeVictim(base);
  const before = snapshot(victim);
  const home = join(base, 'home');
  await Overlay2Driver.init(home);
  const leftover = join(home, '.partial', 'leftover');
  const racer = await startRacer(leftover, join(base, 'stop'));
  try {
    for (let t = 0; t < TRIALS; t++) {
      raceTree(leftover, victim);
      await Overlay2Driver.init(home);
      assert.is(snapshot(victim), before, `trial ${t}: the victim outside the home changed`);
      assert.not.ok(fs.existsSync(leftover), `trial ${t}: the leftover survived init`);
    }
  } finally {
    const swaps = await racer.stop();
    console.error(`   .partial race: ${TRIALS} trials, ${swaps} exchanges`);
    assert.ok(swaps > 0, 'the racer never exchanged anything: the test proved nothing');
  }
});

// ---- what a walk meets ---------------------------------------------------------------------------

test('symlinks inside the tree (and the root itself as a symlink) are unlinked, never followed', async () => {
  const base = scratch.fresh();
  const victim = makeVictim(base);
  const before = snapshot(victim);
  const doomed = join(base, 'doomed');
  fs.mkdirSync(join(doomed, 'a', 'b'), { recursive: true });
  fs.symlinkSync(victim, join(doomed, 'abs'));
  fs.symlinkSync('../../victim', join(doomed, 'a', 'rel'));
  fs.symlinkSync(join(victim, 'hello'), join(doomed, 'a', 'b', 'tofile'));
  fs.symlinkSync('nowhere', join(doomed, 'a', 'dangling'));
  await removeTree(doomed);
  assert.not.ok(fs.existsSync(doomed));
  fs.symlinkSync(victim, join(base, 'rootlink'));
  removeTreeSync(join(base, 'rootlink'));
  assert.not.ok(fs.existsSync(join(base, 'rootlink')));
  assert.is(snapshot(victim), before);
});

test('a symlink between `beneath` and the path is refused (ELOOP), nothing deleted', async () => {
  const base = scratch.fresh();
  const victim = makeVictim(base);
  const before = snapshot(victim);
  fs.mkdirSync(join(base, 'home'));
  fs.symlinkSync(dirname(victim), join(base, 'home', 'hop'));
  const e = await rejection(removeTree(join(base, 'home', 'hop', 'victim'), join(base, 'home')));
  expectShimError(e, 'ELOOP', 'openat2', join(base, 'home', 'hop', 'victim'));
  assert.is(snapshot(victim), before);
});

test('nothing is deleted on the calling thread: with the libuv pool held, a small tree holding a big file is whole when removeTree returns', async () => {
  // (a service's event loop must not wait for an unlink: a big file's frees its blocks inside the syscall)
  const base = scratch.fresh();
  const doomed = join(base, 'doomed');
  fs.mkdirSync(join(doomed, 'diff'), { recursive: true });
  fs.writeFileSync(join(doomed, 'diff', 'big'), Buffer.alloc(8 << 20, 1));
  fs.writeFileSync(join(doomed, 'link'), 'l');
  // every pool thread blocked in open(2) of a FIFO until a writer comes; work queued after them waits
  const fifos = Array.from({ length: Number(process.env.UV_THREADPOOL_SIZE ?? 4) }, (_, i) => join(base, `fifo${i}`));
  for (const f of fifos) shim.mknodat(AT_FDCWD, f, fs.constants.S_IFIFO | 0o600, 0, 0);
  const held = fifos.map((f) => fs.promises.open(f, 'r'));
  const removal = removeTree(doomed);
  const whole = fs.existsSync(join(doomed, 'diff', 'big')) && fs.existsSync(join(doomed, 'link'));
  for (const f of fifos) {
    for (;;) {
      try {
        fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e; // its reader is not in open(2) yet
        await new Promise((r) => setTimeout(r, 1));
      }
    }
  }
  for (const h of await Promise.all(held)) await h.close();
  await removal;
  assert.ok(whole, 'the tree was still there when removeTree returned');
  assert.not.ok(fs.existsSync(doomed));
});

test('a missing path is not an error; a path not below `beneath` is refused', async () => {
  const base = scratch.fresh();
  await removeTree(join(base, 'nope'));
  await removeTree(join(base, 'nope', 'deeper'));
  removeTreeSync(join(base, 'nope', 'deeper'));
  for (const [p, b] of [[base, base], [join(base, '..'), base], ['relative', base]]) {
    let caught: unknown;
    try { removeTreeSync(p, b); } catch (e) { caught = e; }
    assert.is((caught as { code?: string })?.code, 'ERR_INVALID_ARG_VALUE', `${p} beneath ${b}`);
  }
  assert.ok(fs.existsSync(base));
});

rootTest('a bind mount inside a doomed tree is not crossed: EXDEV names it, the bind source stays whole', async () => {
  const base = scratch.fresh();
  const src = makeVictim(base);
  // several subdirs: removeTree may split the work into subtrees below the mount point
  for (const d of ['s1', 's2', 's3']) {
    fs.mkdirSync(join(src, d, 'deeper'), { recursive: true });
    fs.writeFileSync(join(src, d, 'deeper', 'f'), d);
  }
  const before = snapshot(src);
  const doomed = join(base, 'doomed');
  const mp = join(doomed, 'a', 'mnt');
  fs.mkdirSync(mp, { recursive: true });
  fs.writeFileSync(join(mp, 'under-the-mount'), 'hidden');
  fs.writeFileSync(join(doomed, 'a', 'sibling'), 's');
  execFileSync('mount', ['--bind', src, mp]);
  try {
    const e = await rejection(removeTree(doomed));
    expectShimError(e, 'EXDEV', 'openat2', mp);
    assert.is(snapshot(src), before, 'the bind source changed');
    assert.is(snapshot(mp), before, 'something below the mount point was deleted');
  } finally {
    execFileSync('umount', [mp]);
  }
  assert.is(fs.readFileSync(join(mp, 'under-the-mount'), 'utf8'), 'hidden');
  await removeTree(doomed);
  assert.not.ok(fs.existsSync(doomed));
});

rootTest('a mount point (tmpfs) and a bind-mounted file inside a doomed tree are reported, not deleted', async () => {
  const base = scratch.fresh();
  const doomed = join(base, 'doomed');
  const mp = join(doomed, 'tmp');
  fs.mkdirSync(mp, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mp]);
  fs.writeFileSync(join(mp, 'on-tmpfs'), 't');
  try {
    expectShimError(await rejection(removeTree(doomed)), 'EXDEV', 'openat2', mp);
    assert.is(fs.readFileSync(join(mp, 'on-tmpfs'), 'utf8'), 't');
  } finally {
    execFileSync('umount', [mp]);
  }
  // a file bind-mounted over a file: unlink says EBUSY
  const keep = join(base, 'keep');
  fs.writeFileSync(keep, 'kept');
  fs.writeFileSync(join(doomed, 'f'), '');
  execFileSync('mount', ['--bind', keep, join(doomed, 'f')]);
  try {
    let caught: unknown;
    try { removeTreeSync(doomed); } catch (e) { caught = e; }
    expectShimError(caught, 'EBUSY', 'unlinkat', join(doomed, 'f'));
    assert.is(fs.readFileSync(keep, 'utf8'), 'kept');
  } finally {
    execFileSync('umount', [join(doomed, 'f')]);
  }
  removeTreeSync(doomed);
  assert.not.ok(fs.existsSync(doomed));
  assert.is(fs.readFileSync(keep, 'utf8'), 'kept');
});

test('a 2,000-level tree and a 10,000-file directory are removed', async () => {
  const base = scratch.fresh();
  const deep = join(base, 'deep');
  fs.mkdirSync(deep);
  let fd = fs.openSync(deep, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  for (let i = 0; i < 2000; i++) {
    shim.mkdirat(fd, 'd', 0o755);
    const next = shim.openat2(fd, 'd', fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, 0, 0);
    fs.closeSync(fd);
    fd = next;
    fs.writeFileSync(`/proc/self/fd/${fd}/f`, 'x');
  }
  fs.closeSync(fd);
  await removeTree(deep);
  assert.not.ok(fs.existsSync(deep));

  const wide = join(base, 'wide');
  fs.mkdirSync(wide);
  for (let i = 0; i < 10_000; i++) fs.writeFileSync(join(wide, `file-with-a-longish-name-${i}`), '');
  for (let i = 0; i < 50; i++) fs.mkdirSync(join(wide, `d${i}`, 'x'), { recursive: true });
  removeTreeSync(wide);
  assert.not.ok(fs.existsSync(wide));
});

rootTest('read-only dirs and files owned by others go too (as rm -rf as root)', async () => {
  const base = scratch.fresh();
  const doomed = join(base, 'doomed');
  fs.mkdirSync(join(doomed, 'ro', 'inner'), { recursive: true });
  fs.writeFileSync(join(doomed, 'ro', 'inner', 'f'), '');
  fs.chownSync(join(doomed, 'ro', 'inner', 'f'), 1234, 1234);
  fs.chmodSync(join(doomed, 'ro', 'inner'), 0o500);
  fs.chmodSync(join(doomed, 'ro'), 0o000);
  await removeTree(doomed);
  assert.not.ok(fs.existsSync(doomed));
});

test.run();
