// applyThroughMount on a real overlay mount: AUFS whiteouts become deletions in the merged view (the
// kernel records them in the upper dir), opaque markers remove the children the archive did not bring.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyThroughMount } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { loadShim } from '../src/native/shim.js';
import { MNT_DETACH } from '../src/native/constants.js';
import { canMountOverlay, mountTest, tempDir } from './support/env.js';
import { dir, file, symlink, tarOf } from './apply-tar.js';

const maybe = mountTest();
const shim = canMountOverlay ? loadShim() : null;

interface Stack { root: string; lower: string; upper: string; merged: string }

function mountStack(fill: (lower: string) => void): Stack {
  const root = tempDir('ovl2-apply-mount-');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(root, n));
  for (const d of [lower, upper, work, merged]) fs.mkdirSync(d);
  fill(lower);
  shim!.mount('overlay', merged, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work},index=off`);
  return { root, lower, upper, merged };
}

function teardown(s: Stack): void {
  try { shim!.umount2(s.merged, MNT_DETACH); } catch { /* not mounted */ }
  fs.rmSync(s.root, { recursive: true, force: true });
}

const opts = () => ({ userxattr: false, idMappings: new IdMappings() });

maybe('whiteouts delete, opaque markers hide the lower children, new content lands in the upper dir', async () => {
  const s = mountStack((l) => {
    fs.writeFileSync(join(l, 'a'), 'lower a');
    fs.mkdirSync(join(l, 'd'));
    fs.writeFileSync(join(l, 'd/x'), 'x');
    fs.writeFileSync(join(l, 'd/y'), 'y');
    fs.mkdirSync(join(l, 'o/sub'), { recursive: true });
    fs.writeFileSync(join(l, 'o/p'), 'p');
    fs.writeFileSync(join(l, 'o/sub/deep'), 'deep');
    fs.mkdirSync(join(l, 'k'));
    fs.writeFileSync(join(l, 'k/replaced'), 'old');
    fs.mkdirSync(join(l, 'gone-dir/inner'), { recursive: true });
  });
  try {
    const tar = tarOf(
      file('.wh.a'),
      file('d/.wh.x'),
      file('.wh.gone-dir'),
      dir('o/'), file('o/.wh..wh..opq'), file('o/new', 'new!'), dir('o/sub/'), file('o/sub/n2', 'n2'),
      file('k/replaced', 'fresh'),
      file('top', 'hello'),
    );
    const size = await applyThroughMount(s.merged, Readable.from([tar]), opts());
    assert.is(size, 'new!'.length + 'n2'.length + 'fresh'.length + 'hello'.length, 'Σ entry sizes, as moby returns');
    const m = (p: string) => join(s.merged, p);
    assert.not.ok(fs.existsSync(m('a')));
    assert.not.ok(fs.existsSync(m('d/x')));
    assert.is(fs.readFileSync(m('d/y'), 'utf8'), 'y');
    assert.not.ok(fs.existsSync(m('gone-dir')));
    assert.equal(fs.readdirSync(m('o')).sort(), ['new', 'sub']);
    assert.equal(fs.readdirSync(m('o/sub')), ['n2']);
    assert.is(fs.readFileSync(m('k/replaced'), 'utf8'), 'fresh');
    assert.is(fs.readFileSync(m('top'), 'utf8'), 'hello');
    // the kernel wrote overlay whiteouts into the upper dir; the lower dir is untouched
    const wa = fs.lstatSync(join(s.upper, 'a'));
    assert.ok(wa.isCharacterDevice() && wa.rdev === 0, 'upper/a is a whiteout');
    assert.ok(fs.lstatSync(join(s.upper, 'd/x')).isCharacterDevice());
    assert.is(fs.readFileSync(join(s.lower, 'a'), 'utf8'), 'lower a');
    assert.ok(fs.existsSync(join(s.lower, 'o/sub/deep')));
    assert.not.ok(fs.existsSync(join(s.upper, 'o/.wh..wh..opq')));
  } finally {
    teardown(s);
  }
});

maybe('through a mount, a path through a lower symlink is refused and nothing is written', async () => {
  const s = mountStack((l) => {
    fs.mkdirSync(join(l, 'usr/lib'), { recursive: true });
    fs.symlinkSync('usr/lib', join(l, 'lib'));
  });
  try {
    let code: string | undefined;
    try {
      await applyThroughMount(s.merged, Readable.from([tarOf(file('lib/evil.so', 'x'))]), opts());
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    assert.is(code, 'ERR_UNSAFE_ARCHIVE');
    assert.equal(fs.readdirSync(s.upper), []);
    assert.equal(fs.readdirSync(join(s.lower, 'usr/lib')), []);
  } finally {
    teardown(s);
  }
});

maybe('through a mount, a symlink entry replaces a lower dir and an opaque marker on the root empties it', async () => {
  const s = mountStack((l) => {
    fs.mkdirSync(join(l, 'bin'));
    fs.writeFileSync(join(l, 'bin/sh'), 'sh');
    fs.writeFileSync(join(l, 'old'), 'old');
  });
  try {
    await applyThroughMount(s.merged, Readable.from([tarOf(symlink('bin', 'usr/bin'), file('.wh..wh..opq'), file('fresh', 'f'))]), opts());
    assert.equal(fs.readdirSync(s.merged).sort(), ['bin', 'fresh']);
    assert.is(fs.readlinkSync(join(s.merged, 'bin')), 'usr/bin');
  } finally {
    teardown(s);
  }
});

test.run();
