// exportChanges (naive diff: a mounted layer + a change list) writes the same entries, in the same
// order, as exportLayer (native: the upper dir) for the same changes; only whiteouts differ in
// their time (0), owner (root) and link name (never stale).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { exportChanges, exportLayer } from '../src/export/export.js';
import { IdMappings } from '../src/idmap.js';
import { loadShim } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import type { Change } from '../src/changes/change.js';
import { CAPS_V3, LONG_BASE_FILE, LONG_SPLIT_FILE, collect, parseTar, patternBytes, type TarEntry } from './export-fixture.js';
import { isRoot, hasOverlay, testIf, scratchRoot } from './support/env.js';

const shim = loadShim();
const overlayTest = testIf(isRoot && hasOverlay, 'export-changes.test', 'needs root and overlay to build a layer through the kernel');

const noMaps = new IdMappings();
const opts = { userxattr: false, idMappings: noMaps };
const scratch = scratchRoot('overlay2-export-changes-');
const base = scratch.root;
test.after(() => scratch.remove());

function mount(lower: string, upper: string, work: string, merged: string, ro: boolean): void {
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `${ro ? 'ro,' : ''}lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged]);
}

/** A layer with deletions, a copy-up and new entries of every kind, but no opaque directory. */
function buildLayer(root: string) {
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((n) => join(root, n)) as [string, string, string, string];
  for (const p of [lower, upper, work, merged]) fs.mkdirSync(p, { recursive: true });
  fs.mkdirSync(join(lower, 'etc'));
  fs.writeFileSync(join(lower, 'etc/hosts'), '127.0.0.1 localhost\n');
  fs.writeFileSync(join(lower, 'etc/old.conf'), 'old');
  fs.writeFileSync(join(lower, 'gone.txt'), 'gone');
  fs.mkdirSync(join(lower, 'gonedir/sub'), { recursive: true });
  fs.writeFileSync(join(lower, 'gonedir/sub/x'), 'x');
  fs.mkdirSync(join(lower, 'keep'));
  fs.writeFileSync(join(lower, 'keep/k1'), 'k1');

  mount(lower, upper, work, merged, false);
  try {
    const m = (p: string) => join(merged, p);
    fs.rmSync(m('etc/old.conf'));
    fs.rmSync(m('gone.txt'));
    fs.rmSync(m('gonedir'), { recursive: true });
    fs.appendFileSync(m('etc/hosts'), '10.0.0.1 db\n');
    fs.mkdirSync(m('a'));
    fs.writeFileSync(m('a/b'), 'b');
    fs.writeFileSync(m('a-b'), 'dash');
    fs.writeFileSync(m('a.txt'), 'dot');
    fs.writeFileSync(m('big'), patternBytes(200_000, 9));
    fs.writeFileSync(m('hl1'), 'linked');
    fs.mkdirSync(m('sub'));
    fs.linkSync(m('hl1'), m('hl2'));
    fs.linkSync(m('hl1'), m('sub/hl3'));
    fs.symlinkSync('/etc/shadow', m('link-abs'));
    execFileSync('mkfifo', [m('fifo')]);
    shim.mknodat(AT_FDCWD, m('char-1-3'), 0o020000 | 0o644, 1, 3);
    fs.mkdirSync(join(merged, LONG_SPLIT_FILE, '..'), { recursive: true });
    fs.writeFileSync(m(LONG_SPLIT_FILE), 'split');
    fs.writeFileSync(m(LONG_BASE_FILE), 'long');
    fs.writeFileSync(m('ünïcode.txt'), 'utf8');
    fs.writeFileSync(m('caps'), 'caps');
  } finally {
    execFileSync('umount', [merged]);
  }
  shim.lsetxattr(join(upper, 'caps'), 'security.capability', CAPS_V3, 0);
  fs.lchownSync(join(upper, 'a.txt'), 1, 4242);
  fs.chmodSync(join(upper, 'a'), 0o2750);
  return { lower, upper, work, merged };
}

/** The change list a comparison of the layer with its parent gives: every upper entry. */
function changesOf(upper: string): Change[] {
  const out: Change[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir)) {
      const p = join(dir, name);
      const st = fs.lstatSync(p);
      const path = `${rel}/${name}`;
      out.push(change(st.isCharacterDevice() && st.rdev === 0 ? 'D' : 'A', path));
      if (st.isDirectory()) walk(p, path);
    }
  };
  walk(upper, '');
  return out;
}

/** A Change as the driver gives it: the display path beside the bytes (here always UTF-8). */
function change(kind: Change['kind'], path: string): Change {
  return { path, kind, pathBytes: Buffer.from(path) };
}

const isWhiteout = (e: TarEntry) => /(^|\/)\.wh\./.test(e.name);

function comparable(e: TarEntry) {
  return { ...e, pax: Object.fromEntries([...e.pax].map(([k, v]) => [k, v.toString('hex')])), data: e.data.toString('hex') };
}

overlayTest('exportChanges through the mount = exportLayer of the upper, entry for entry', async () => {
  const d = buildLayer(join(base, 'same'));
  const native = parseTar(await collect(exportLayer(d.upper, opts)));
  const changes = changesOf(d.upper);
  // the caller's order does not matter: reversed, with a duplicate and an unclean path
  const messy = [...changes].reverse();
  messy.push(change('C', '/a//b/'), changes[0]!);
  mount(d.lower, d.upper, d.work, d.merged, true);
  let naive: TarEntry[];
  try {
    naive = parseTar(await collect(exportChanges(d.merged, messy, opts)));
  } finally {
    execFileSync('umount', [d.merged]);
  }
  assert.equal(naive.map((e) => e.name), native.map((e) => e.name));
  const whiteouts = native.filter(isWhiteout).map((e) => e.name);
  assert.equal(whiteouts, ['etc/.wh.old.conf', '.wh.gone.txt', '.wh.gonedir']);
  for (let i = 0; i < native.length; i++) {
    const n = native[i]!, v = naive[i]!;
    if (isWhiteout(n)) {
      assert.equal([v.typeflag, v.mode, v.size, v.uid, v.gid, v.mtime, v.linkname], ['0', 0o600, 0, 0, 0, 0, ''], v.name);
      assert.equal([n.typeflag, n.mode, n.size, n.uid, n.gid], ['0', 0o600, 0, 0, 0], n.name);
      assert.equal([v.uname, v.gname], [n.uname, n.gname], v.name);
    } else {
      assert.equal(comparable(v), comparable(n), n.name);
    }
  }
  // the native ones share the kernel's whiteout inode: later ones carry a stale link name
  assert.is(native.find((e) => e.name === '.wh.gone.txt')!.linkname, 'etc/old.conf');
  assert.ok(native.some((e) => e.typeflag === '1' && e.name === 'sub/hl3' && e.linkname === 'hl1'));
});

test('exportChanges orders entries as a walk, deleted paths where their names sort', async () => {
  const root = join(base, 'order');
  fs.mkdirSync(join(root, 'a'), { recursive: true });
  fs.writeFileSync(join(root, 'a/b'), 'b');
  fs.writeFileSync(join(root, 'a.txt'), 't');
  const changes: Change[] = [
    change('A', '/a.txt'), change('A', '/a/b'), change('D', '/a0'),
    change('C', '/a'), change('D', '/a/c'), change('C', '/'), change('D', '/a-b'),
  ];
  const entries = parseTar(await collect(exportChanges(root, changes, opts)));
  assert.equal(entries.map((e) => e.name), ['a/', 'a/b', 'a/.wh.c', '.wh.a-b', 'a.txt', '.wh.a0']);
});

test('exportChanges fails the stream when a changed path is missing from the tree', async () => {
  const root = join(base, 'missing');
  fs.mkdirSync(root, { recursive: true });
  const err = await collect(exportChanges(root, [change('A', '/nope')], opts)).then(() => null, (e: Error & { code?: string }) => e);
  assert.is(err?.code, 'ENOENT');
});

test.run();
