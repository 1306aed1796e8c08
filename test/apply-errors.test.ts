// What an apply says when the system says no, and what it leaves: one Overlay2Error line naming
// the layer and the entry (errno kept as cause); a refusal is never replaced by a cleanup failure,
// and the staging dir is gone before the call returns whenever it can be removed at all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execFileSync, spawnSync } from 'node:child_process';
import { applyLayer, applyThroughMount } from '../src/apply/apply.js';
import { applyFailure } from '../src/apply/errors.js';
import { Overlay2Error } from '../src/errors.js';
import { IdMappings } from '../src/idmap.js';
import { loadShim } from '../src/native/shim.js';
import { MNT_DETACH } from '../src/native/constants.js';
import { canMountOverlay, isRoot, mountTest, tempDir, testIf } from './support/env.js';
import { dir, file, pax, symlink, tarOf } from './apply-tar.js';

const maybe = testIf(isRoot, 'apply error tests', 'not running as root');
const hasChattr = isRoot && spawnSync('sh', ['-c', 'command -v chattr']).status === 0;
const withChattr = testIf(hasChattr, 'cleanup-failure tests', 'needs root and chattr (e2fsprogs)');

function newLayer(): { root: string; layer: string; diff: string } {
  const root = tempDir('ovl2-apply-errors-');
  const layer = join(root, 'layer-7');
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  return { root, layer, diff: join(layer, 'diff') };
}

function stagingDirs(layer: string): string[] {
  return fs.readdirSync(layer).filter((n) => n.startsWith('.staging-diff-'));
}

async function refusal(p: Promise<unknown>): Promise<Overlay2Error & { cleanupErrors?: unknown[] }> {
  try {
    await p;
  } catch (e) {
    return e as Overlay2Error;
  }
  throw new Error('expected the apply to fail');
}

const opts = (warnings: string[] = []) => ({ userxattr: false, idMappings: new IdMappings(), onWarning: (m: string) => warnings.push(m) });

maybe('a name too long for the filesystem is ERR_BAD_ARCHIVE naming layer and entry, with ENAMETOOLONG as cause', async () => {
  const { root, layer, diff } = newLayer();
  const long = `d/${'n'.repeat(300)}`;
  const e = await refusal(applyLayer(layer, Readable.from([tarOf(dir('d/'), pax([['path', long]]), file('ignored', 'x'))]), opts()));
  assert.instance(e, Overlay2Error);
  assert.is(e.code, 'ERR_BAD_ARCHIVE');
  assert.ok(e.message.includes('layer layer-7') && e.message.includes(JSON.stringify(long)), e.message);
  assert.not.match(e.message, /\n/);
  assert.is((e.cause as { code?: string }).code, 'ENAMETOOLONG');
  assert.equal(stagingDirs(layer), []);
  assert.equal(fs.readdirSync(diff), []);
  fs.rmSync(root, { recursive: true, force: true });
});

maybe('a user. xattr on a symlink is skipped with a warning (the kernel refuses it: EPERM), as moby does', async () => {
  const { root, layer, diff } = newLayer();
  const warnings: string[] = [];
  await applyLayer(layer, Readable.from([tarOf(pax([['SCHILY.xattr.user.evil', 'x']]), symlink('ln', 'target'), file('f', 'data'))]), opts(warnings));
  assert.is(fs.readlinkSync(join(diff, 'ln')), 'target');
  assert.is(fs.readFileSync(join(diff, 'f'), 'utf8'), 'data');
  assert.ok(warnings.some((w) => w.includes('user.evil') && w.includes('"ln"')), warnings.join('; '));
  fs.rmSync(root, { recursive: true, force: true });
});

mountTest()('naive path (through a mount): user. xattrs on symlinks and xattrs the mount refuses are skipped, not raw EPERM', async () => {
  const shim = loadShim();
  const root = tempDir('ovl2-apply-errors-mnt-');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(root, n));
  for (const d of [lower, upper, work, merged]) fs.mkdirSync(d);
  shim.mount('overlay', merged, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work},index=off`);
  try {
    const warnings: string[] = [];
    const tar = tarOf(
      pax([['SCHILY.xattr.user.a', 'x']]), symlink('ln', 'f'),
      pax([['SCHILY.xattr.trusted.overlay.x', 'y']]), file('f', 'data'),
      pax([['SCHILY.xattr.user.b', 'x']]), dir('d/'));
    await applyThroughMount(merged, Readable.from([tar]), { ...opts(warnings), layer: 'naive-1' });
    assert.is(fs.readlinkSync(join(merged, 'ln')), 'f');
    assert.is(fs.readFileSync(join(merged, 'f'), 'utf8'), 'data');
    assert.ok(warnings.length > 0);
  } finally {
    shim.umount2(merged, MNT_DETACH);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

maybe('an xattr the kernel cannot take (a 300-byte name) is ERR_BAD_ARCHIVE naming layer and entry', async () => {
  for (const [key, value] of [[`SCHILY.xattr.user.${'x'.repeat(300)}`, 'v']]) {
    const { root, layer, diff } = newLayer();
    const e = await refusal(applyLayer(layer, Readable.from([tarOf(pax([[key, value]]), file('f', 'data'))]), opts()));
    assert.is(e.code, 'ERR_BAD_ARCHIVE', e.message);
    assert.ok(e.message.includes('"f"') && e.message.includes('layer-7'), e.message);
    assert.ok(['EINVAL', 'ERANGE', 'E2BIG'].includes((e.cause as { code?: string }).code ?? ''), String(e.cause));
    assert.equal(fs.readdirSync(diff), []);
    assert.equal(stagingDirs(layer), []);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** A tar stream the test feeds by hand: `a` first; `then()` runs once the staging dir holds it, and
 *  an entry that climbs out of the layer follows (the refusal). */
function refusedAfter(layer: string, then: (staging: string) => void): Readable {
  const stream = new Readable({ read() { /* pushed by hand */ } });
  stream.push(file('a', 'first'));
  const poll = setInterval(() => {
    const s = stagingDirs(layer);
    if (s.length === 0 || !fs.existsSync(join(layer, s[0], 'a'))) return;
    clearInterval(poll);
    then(join(layer, s[0]));
    stream.push(tarOf(file('../escape', 'x')));
    stream.push(null);
  }, 5);
  return stream;
}

withChattr('a cleanup that keeps failing never replaces the refusal: the failures ride along as cleanupErrors', async () => {
  const { root, layer } = newLayer();
  let immutable = '';
  const warnings: string[] = [];
  const e = await refusal(applyLayer(layer, refusedAfter(layer, (staging) => {
    immutable = join(staging, 'a');
    execFileSync('chattr', ['+i', immutable]);
  }), opts(warnings)));
  try {
    assert.is(e.code, 'ERR_UNSAFE_ARCHIVE', e.message);
    assert.ok(e.message.includes('layer-7'), e.message);
    assert.ok(Array.isArray(e.cleanupErrors) && e.cleanupErrors.length === 3, `three tries recorded: ${String(e.cleanupErrors)}`);
    // (node's rm reports the immutable file's EPERM as ENOTDIR from its fallback: any errno will do)
    assert.ok(e.cleanupErrors!.every((c) => c instanceof Error && typeof (c as { code?: string }).code === 'string'), e.cleanupErrors!.map(String).join('; '));
    assert.is(warnings.filter((w) => w.includes('cleanup')).length, 3);
  } finally {
    execFileSync('chattr', ['-i', immutable]);
    fs.rmSync(root, { recursive: true, force: true });
  }
});

withChattr('a cleanup that fails once is retried: the staging dir is gone before the refusal is returned', async () => {
  const { root, layer, diff } = newLayer();
  let immutable = '';
  const e = await refusal(applyLayer(layer, refusedAfter(layer, (staging) => {
    immutable = join(staging, 'a');
    execFileSync('chattr', ['+i', immutable]);
  }), {
    ...opts(),
    // The first failed removal lifts the obstacle (a racer that goes away).
    onWarning: (m: string) => { if (m.includes('try 1')) execFileSync('chattr', ['-i', immutable]); },
  }));
  assert.is(e.code, 'ERR_UNSAFE_ARCHIVE', e.message);
  assert.is(e.cleanupErrors, undefined);
  assert.equal(stagingDirs(layer), []);
  assert.equal(fs.readdirSync(diff), []);
  fs.rmSync(root, { recursive: true, force: true });
});

test('errno → code: each a one-line Overlay2Error naming layer and entry, the errno as cause', () => {
  const cases: Array<[string, string]> = [
    ['ENOSPC', 'ERR_NO_SPACE'], ['EDQUOT', 'ERR_NO_SPACE'], ['ENAMETOOLONG', 'ERR_BAD_ARCHIVE'],
    ['ENOTDIR', 'ERR_LAYER_BUSY'], ['ENOTEMPTY', 'ERR_LAYER_BUSY'], ['ENOENT', 'ERR_LAYER_BUSY'], ['EBUSY', 'ERR_LAYER_BUSY'],
  ];
  for (const [errno, code] of cases) {
    const sys = Object.assign(new Error(`${errno}: something,\n unlinkat 'x'`), { code: errno });
    const e = applyFailure(sys, 'lay', 'd/x') as Overlay2Error;
    assert.instance(e, Overlay2Error, errno);
    assert.is(e.code, code, errno);
    assert.is(e.cause, sys);
    assert.is(e.id, 'lay');
    assert.ok(e.message.includes('layer lay') && e.message.includes('"d/x"') && !e.message.includes('\n'), e.message);
  }
  // Before any entry, ENOENT is about the call's own paths: it stays what it is.
  const early = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
  assert.is(applyFailure(early, 'lay', ''), early);
  // Other system errors keep their code and gain layer and entry.
  const eio = applyFailure(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }), 'lay', 'f') as Error & { code: string };
  assert.is(eio.code, 'EIO');
  assert.ok(eio.message.includes('layer lay') && eio.message.includes('"f"'));
});

test.run();
