// The CLI's input and output paths as a user meets them (the bin): a missing archive, an output in a
// missing directory or naming a directory, a full file system under the output, a size quota on a
// file system without project quotas — each one line in the CLI's words (no errno text, no temp
// file's name), and an output path checked before any work is done.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import { mountTest, tempDir, removeTree, testIf, canMountOverlay, whyNotMount, have } from './support/env.js';

const test = mountTest(uvuTest);
let base = '';
let home = '';

function cli(h: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', h, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const run = (...args: string[]) => cli(home, ...args);

/** Exit 1 and exactly `line` on stderr: one line, none of Node's errno text, no temp file named. */
function fails(r: { code: number | null; err: string }, line: RegExp): void {
  assert.is(r.code, 1, r.err);
  assert.is(r.err.trimEnd().split('\n').length, 1, r.err);
  assert.match(r.err, line);
  assert.not.match(r.err, /E[A-Z]{3,}:|no such process|illegal operation|\.tmp-|quotactl|backingFsBlockDev|syscall/);
}

test.before(() => {
  base = tempDir('ovl2-clipaths-');
  home = join(base, 'home');
  assert.is(run('create', 'base').code, 0);
  assert.is(run('create', 'top', '--parent', 'base').code, 0);
  // a layer whose export fails at once: a command that reached the export before its output check
  // would say so instead of naming the output
  assert.is(run('create', 'broken', '--parent', 'top').code, 0);
  rmSync(join(home, 'broken', 'diff'), { recursive: true });
  mkdirSync(join(base, 'existing-dir'));
});
test.after(() => removeTree(base));

test('load of a missing archive: one line naming it; no home is created for it', () => {
  const fresh = join(base, 'never-made');
  fails(cli(fresh, 'load', '/nonexistent.tar'), /^overlay2: cannot read \/nonexistent\.tar: no such file\n$/);
  assert.not.ok(existsSync(fresh));
  fails(run('apply', 'top', '-i', join(base, 'nope.tar')), /^overlay2: cannot read .*nope\.tar: no such file\n$/);
});

test('save -o into a missing directory, or onto a directory: one line, before any layer is read', () => {
  fails(run('save', 'broken', '-o', '/nonexistent/dir/out.tar', '--progress'),
    /^overlay2: cannot write \/nonexistent\/dir\/out\.tar: no such directory \/nonexistent\/dir\n$/);
  const dir = join(base, 'existing-dir');
  fails(run('save', 'broken', '-o', dir, '--progress'), /^overlay2: cannot write .*existing-dir: it is a directory \(name a file to write\)\n$/);
  assert.equal(readdirSync(dir), []);
  assert.equal(readdirSync(base).filter((n) => n.includes('.tmp-')), []);
  // with the output fine, the same layer fails for its own reason (the check above came first)
  const r = run('save', 'broken', '-o', join(base, 'broken.tar'));
  assert.is(r.code, 1);
  assert.not.match(r.err, /cannot write/);
  // and a good one is written
  assert.is(run('save', 'top', '-o', join(base, 'top.tar')).code, 0);
  assert.ok(existsSync(join(base, 'top.tar')));
});

test('diff -o into a missing directory, or onto a directory: one line, before the layer is read', () => {
  fails(run('diff', 'broken', '-o', join(base, 'missing', 'x.tar')), /^overlay2: cannot write .*missing\/x\.tar: no such directory .*missing\n$/);
  fails(run('diff', 'broken', '-o', join(base, 'existing-dir')), /^overlay2: cannot write .*existing-dir: it is a directory/);
  fails(run('diff', 'top', '-o', join(base, 'top.tar', 'x.tar')), /^overlay2: cannot write .*: .*top\.tar is not a directory\n$/);
});

test('thin make -o into a missing directory or onto a directory: one line, nothing published', () => {
  const root = join(base, 'thin-root');
  fails(run('thin', 'make', 'top', '--repo', 'r.example.org', '--root', root, '-o', '/nonexistent/t.tar'),
    /^overlay2: cannot write \/nonexistent\/t\.tar: no such directory \/nonexistent\n$/);
  fails(run('thin', 'make', 'top', '--repo', 'r.example.org', '--root', root, '-o', join(base, 'existing-dir')), /it is a directory/);
  assert.not.ok(existsSync(root));
  const ok = run('thin', 'make', 'top', '--repo', 'r.example.org', '--root', root, '-o', join(base, 'thin.tar'));
  assert.is(ok.code, 0, ok.err);
});

testIf(canMountOverlay && have('mkfs.ext4'), 'the full-disk and quota cases', canMountOverlay ? 'mkfs.ext4 is not installed' : whyNotMount, test)(
  'a full file system under the output, and a size on a file system without project quotas: one line each', () => {
    // a small ext4 made without the quota feature: the default of the Quick start's machine
    const img = join(base, 'small.img');
    const mnt = join(base, 'small');
    mkdirSync(mnt);
    execFileSync('mkfs.ext4', ['-q', '-F', img, '4M'], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'pipe' });
    try {
      const small = join(mnt, 'home');
      fails(cli(small, '-o', 'overlay2.size=10M', 'create', 'q', '--rw'),
        /^overlay2: option overlay2\.size needs project quotas .*: the file system keeps no project quota accounting\n$/);
      // an archive larger than the file system: the write's failure names the output
      assert.is(run('create', 'big', '--parent', 'top', '--rw').code, 0);
      const merged = run('mount', 'big').out.trim();
      execFileSync('dd', ['if=/dev/urandom', `of=${join(merged, 'blob')}`, 'bs=1M', 'count=8'], { stdio: 'pipe' });
      assert.is(run('unmount', 'big').code, 0);
      for (const args of [['save', 'big', '-o', join(mnt, 'big.tar')], ['diff', 'big', '-o', join(mnt, 'big-diff.tar')]]) {
        fails(run(...args), /^overlay2: cannot write .*big(-diff)?\.tar: no space left on the file system\n$/);
      }
      assert.equal(readdirSync(mnt).filter((n) => n.includes('.tmp-')), []);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

test.run();
