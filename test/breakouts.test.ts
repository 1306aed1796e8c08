// Breakout attempts after the ideas of containerd's TestBreakouts and moby go-archive's symlink and
// hardlink tests that test/hostile.test.ts does not already cover (our cases, our code). Each runs
// against a real layer with a victim file and a victim dir OUTSIDE it, on both import paths (native
// apply into a layer dir, and the naive path through a mounted overlay). Some must be refused; the
// others may succeed (an entry replacing a symlink replaces the link, it never writes through it), but
// in every case the victims stay byte-for-byte, inode-for-inode, time-for-time as they were.
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../src/apply/apply.js';
import { Overlay2Driver } from '../src/driver.js';
import { IdMappings } from '../src/idmap.js';
import { isRoot, testIf, mountTest, scratchRoot } from './support/env.js';
import { dir, file, hardlink, member, pax, symlink, tarOf } from './apply-tar.js';
import { snapshot } from './support/snapshot.js';

const maybe = testIf(isRoot, 'the breakout tests', 'not running as root (they chown and make device nodes)');
const throughMount = mountTest(uvuTest);
const scratch = scratchRoot('ovl2-breakouts-');
uvuTest.after(() => scratch.remove());

interface Scene { root: string; victim: string; victimDir: string }
/** refused: must fail with a documented code; either: must succeed (safely: the checks below). */
type Outcome = 'refused' | 'either';
interface Breakout {
  name: string;
  outcome: Outcome;
  tar: (s: Scene) => Buffer;
  /** After a success: what the layer must hold instead (checked on the native path). */
  inside?: (diff: string) => void;
}

function scene(): Scene {
  const root = scratch.fresh();
  const victim = join(root, 'victim');
  fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
  const victimDir = join(root, 'victimdir');
  fs.mkdirSync(victimDir, { mode: 0o755 });
  fs.writeFileSync(join(victimDir, 'inside'), 'also precious\n');
  fs.utimesSync(victim, 1000, 1000);
  fs.utimesSync(victimDir, 2000, 2000);
  return { root, victim, victimDir };
}

const BREAKOUTS: Breakout[] = [
  // containerd: writes that replace a symlink must replace the link itself
  { name: 'a file entry replacing a symlink to the victim', outcome: 'either',
    tar: (s) => tarOf(symlink('f', s.victim), file('f', 'pwned')),
    inside: (d) => { assert.ok(fs.lstatSync(join(d, 'f')).isFile()); assert.is(fs.readFileSync(join(d, 'f'), 'utf8'), 'pwned'); } },
  { name: 'a dir entry (mode 0777) replacing a symlink to the victim dir (SymlinkChmod)', outcome: 'either',
    tar: (s) => tarOf(symlink('d', s.victimDir), dir('d/', { mode: 0o777 })) },
  { name: 'a relative symlink climbing out (refused), before a file with another owner and mode would replace it', outcome: 'refused',
    tar: () => tarOf(symlink('f', '../../victim'), file('f', 'x', { mode: 0o4777, uid: 4242, gid: 4242 })) },
  { name: 'xattrs on an entry replacing a symlink to the victim', outcome: 'either',
    tar: (s) => tarOf(symlink('x', s.victim), pax([['SCHILY.xattr.user.evil', 'yes']]), file('x', 'data')) },
  { name: 'a hardlink to a symlink to the victim, then a file replacing the hardlink (HardlinkSymlinkChmod)', outcome: 'either',
    tar: (s) => tarOf(symlink('passwd', s.victim), hardlink('hlpasswd', 'passwd'), file('hlpasswd', 'pwned', { mode: 0o777 })) },
  { name: 'a hardlink to a file, then data written under the hardlink name', outcome: 'either',
    tar: () => tarOf(file('a', 'one'), hardlink('b', 'a'), file('b', 'two')) },
  { name: 'a symlink chain leading out, then a file through its head', outcome: 'refused',
    tar: (s) => tarOf(symlink('s1', 's2'), symlink('s2', 's3'), symlink('s3', s.victimDir), file('s1/inside', 'pwned')) },
  { name: 'a symlink to the parent dir inside a subdir, then a file through it (SymlinkParentDirectory)', outcome: 'refused',
    tar: () => tarOf(dir('dir1/'), symlink('dir1/dir2', '../'), file('dir1/dir2/f', 'x')) },
  { name: 'a dir replaced by a symlink out, then a file into the old dir path', outcome: 'refused',
    tar: (s) => tarOf(dir('d/'), file('d/a', 'a'), symlink('d', s.victimDir), file('d/inside', 'pwned')) },
  { name: 'a symlink out made by this archive, then a whiteout through it (WhiteoutSymlink)', outcome: 'refused',
    tar: (s) => tarOf(symlink('sym', s.victimDir), file('sym/.wh.inside')) },
  { name: 'a symlink out made by this archive, then an opaque marker through it', outcome: 'refused',
    tar: (s) => tarOf(symlink('sym', s.victimDir), file('sym/.wh..wh..opq')) },
  { name: 'a whiteout of ../victim (WhiteoutParent)', outcome: 'refused', tar: () => tarOf(file('../.wh.victim')) },
  { name: 'a whiteout climbing out from a subdir', outcome: 'refused', tar: () => tarOf(dir('a/'), file('a/../../.wh.victim')) },
  { name: 'a PAX path climbing out', outcome: 'refused', tar: () => tarOf(pax([['path', '../victim']]), file('innocent', 'pwned')) },
  { name: 'a PAX linkpath aiming a hardlink out', outcome: 'refused', tar: () => tarOf(pax([['linkpath', '../victim']]), hardlink('h', 'innocent')) },
  { name: 'a hardlink through a relative symlink to the parent', outcome: 'refused',
    tar: () => tarOf(symlink('up', '..'), hardlink('h', 'up/victim')) },
  { name: 'a FIFO replacing a symlink to the victim', outcome: 'either',
    tar: (s) => tarOf(symlink('n', s.victim), member({ name: 'n', type: '6', mode: 0o644 })) },
  { name: 'a global PAX header (typeflag g) is accepted and changes nothing outside', outcome: 'either',
    tar: () => tarOf(pax([['comment', 'global']], 'g'), file('ok', 'ok')) },
];

let refused = 0, survived = 0;

for (const b of BREAKOUTS) {
  maybe(`breakout (native apply): ${b.name}`, async () => {
    const s = scene();
    const layer = join(s.root, 'layer');
    fs.mkdirSync(join(layer, 'diff'), { recursive: true });
    const before = [snapshot(s.victim), snapshot(s.victimDir)];
    let err: (Error & { code?: string }) | undefined;
    try {
      await applyLayer(layer, Readable.from([b.tar(s)]), { userxattr: false, idMappings: new IdMappings(), onWarning: () => undefined });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    if (b.outcome === 'refused') {
      assert.ok(err, 'refused');
      assert.ok(['ERR_UNSAFE_ARCHIVE', 'ERR_BAD_ARCHIVE'].includes(err!.code ?? ''), `${err!.code}: ${err!.message}`);
      refused++;
    } else {
      assert.is(err, undefined, `succeeds: ${err?.message}`);
      b.inside?.(join(layer, 'diff'));
      survived++;
    }
    assert.is(snapshot(s.victim), before[0], 'victim file untouched');
    assert.is(snapshot(s.victimDir), before[1], 'victim dir untouched');
    assert.equal(fs.readdirSync(s.root).sort(), ['layer', 'victim', 'victimdir'], 'nothing new beside the layer');
  });
}

// The naive path: the same archives applied through a mounted overlay (applyDiff against a parent
// that is not the layer's direct parent).
throughMount(`breakouts through a mount (naive applyDiff): ${BREAKOUTS.length} archives, victims untouched`, async () => {
  const s = scene();
  const home = join(s.root, 'home');
  const driver = await Overlay2Driver.init(home);
  await driver.create('base');
  await driver.create('mid', 'base');
  const before = [snapshot(s.victim), snapshot(s.victimDir)];
  let i = 0;
  for (const b of BREAKOUTS) {
    const id = `l${i++}`;
    await driver.create(id, 'mid');
    let err: (Error & { code?: string }) | undefined;
    try {
      await driver.applyDiff(id, 'base', Readable.from([b.tar(s)]));
    } catch (e) {
      err = e as Error & { code?: string };
    }
    if (b.outcome === 'refused') {
      assert.ok(err && ['ERR_UNSAFE_ARCHIVE', 'ERR_BAD_ARCHIVE'].includes(err.code ?? ''), `${b.name}: ${err?.code}: ${err?.message}`);
      assert.equal(fs.readdirSync(join(home, id, 'diff')), [], `${b.name}: a refused import leaves the layer empty`);
    }
    assert.is(snapshot(s.victim), before[0], `${b.name}: victim file untouched`);
    assert.is(snapshot(s.victimDir), before[1], `${b.name}: victim dir untouched`);
  }
  await driver.cleanup();
});

uvuTest.after(() => console.error(`breakouts: ${refused} refused, ${survived} applied safely (victims untouched in all)`));

uvuTest.run();
