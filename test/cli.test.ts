// The CLI as a user runs it: exit codes, one-line errors, JSON outputs, mounts across processes.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { mountTest, tempDir, removeTree, isMounted } from './support/env.js';

const test = mountTest(uvuTest);
const cli = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');
let base = '';
let home = '';

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, '--home', home, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test.before(() => {
  base = tempDir();
  home = join(base, 'home');
});
test.after(() => removeTree(base));

test('create, ls, exists, metadata, remove', () => {
  assert.is(run('create', 'base').code, 0);
  assert.is(run('create', 'child', '--parent', 'base', '--rw').code, 0);
  assert.equal(run('ls').out.trim().split('\n'), ['base', 'child']);
  assert.is(run('exists', 'child').code, 0);
  assert.is(run('exists', 'nope').code, 1);
  const meta = JSON.parse(run('metadata', 'child').out);
  assert.is(meta.UpperDir, join(home, 'child', 'diff'));
  assert.is(meta.LowerDir, join(home, 'base', 'diff'));
  assert.is(run('remove', 'child').code, 0);
  assert.is(run('exists', 'child').code, 1);
});

test('mount in one process, unmount in another', () => {
  run('create', 'm-base');
  run('create', 'm1', '--parent', 'm-base');
  const r = run('mount', 'm1');
  assert.is(r.code, 0, r.err);
  const path = r.out.trim();
  assert.is(path, join(home, 'm1', 'merged'));
  assert.ok(isMounted(path));
  assert.is(run('unmount', 'm1').code, 0);
  assert.not.ok(isMounted(path));
  assert.is(existsSync(path), false);
});

test('cleanup unmounts what other processes mounted', () => {
  run('create', 'c-base');
  run('create', 'c1', '--parent', 'c-base');
  const path = run('mount', 'c1').out.trim();
  assert.ok(isMounted(path));
  assert.is(run('cleanup').code, 0);
  assert.not.ok(isMounted(path));
});

test('status as text and JSON', () => {
  const text = run('status');
  assert.match(text.out, /^Backing Filesystem: /m);
  const json = JSON.parse(run('status', '--json').out);
  assert.is(json['Native Overlay Diff'], 'true');
});

test('errors: one line naming the id or option, exit 1; usage errors exit 2', () => {
  const missing = run('create', 'x', '--parent', 'ghost');
  assert.is(missing.code, 1);
  assert.is(missing.err.trim().split('\n').length, 1);
  assert.match(missing.err, /ghost/);
  const badId = run('create', '..');
  assert.is(badId.code, 1);
  assert.match(badId.err, /invalid layer id/);
  const badOpt = spawnSync(process.execPath, [cli, '--home', home, '-o', 'overlay2.nope=1', 'ls'], { encoding: 'utf8' });
  assert.is(badOpt.status, 1);
  assert.match(badOpt.stderr, /overlay2\.nope/);
  assert.is(run('frobnicate').code, 2);
  assert.is(run('create').code, 2);
  assert.is(run('create', 'a', '--bogus').code, 2);
  assert.is(spawnSync(process.execPath, [cli], { encoding: 'utf8' }).status, 2);
});

test.run();
