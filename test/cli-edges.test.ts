// The CLI's edges as a user meets them through the bin (issue 23, items 7-15): usage errors exit 2 and
// say what would be right, a failed call leaves no new home, a file that is not a tar is called so,
// progress speaks one vocabulary, Ctrl-C exits 130 without a completion line, an interrupted apply
// shows in read-only commands and in status, unmount of a layer that is not mounted says so.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import { mountTest, tempDir, removeTree } from './support/env.js';

const test = mountTest(uvuTest);
let base = '';
let home = '';

function cli(h: string, args: string[], opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', h, ...args], { encoding: 'utf8', input: opts.input, env: { ...process.env, ...opts.env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const run = (...args: string[]) => cli(home, args);
const oneLine = (s: string) => s.trim().length > 0 && !s.trim().includes('\n');

test.before(() => {
  base = tempDir('ovl2-cliedges-');
  home = join(base, 'home');
  assert.is(run('create', 'base').code, 0);
});
test.after(() => removeTree(base));

test('usage errors exit 2 and say what is right: -o keys, --home, --size, ids (7)', () => {
  const bad = run('-o', 'foo=bar', 'ls');
  assert.is(bad.code, 2, bad.err);
  assert.ok(oneLine(bad.err), bad.err);
  // every valid driver option key is listed
  for (const key of ['overlay2.override_kernel_check', 'overlay2.size', 'cvmfsMountMethod', 'thin.root', 'thin.mount_command']) assert.ok(bad.err.includes(key), key);
  assert.match(bad.err, /^overlay2: ls: -o: unknown option foo .* — usage: overlay2 ls/);
  const rel = spawnSync(process.execPath, [CLI_BIN, '--home', 'relhome', 'ls'], { encoding: 'utf8' });
  assert.is(rel.status, 2);
  assert.match(rel.stderr, /^overlay2: ls: the home must be an absolute path .*got "relhome" — usage/);
  const size = run('create', 'q', '--rw', '--size', 'lots');
  assert.is(size.code, 2);
  assert.match(size.err, /--size takes a size in binary units \(10G, 512M/);
  assert.is(run('create', 'q', '--size', '1G').code, 2, '--size without --rw');
  assert.is(run('plugin', '--grace', 'soon').code, 2);
  assert.is(run('exists', 'q').code, 1, 'none of those made the layer');
  // a failure is still 1, and no message repeats the command's name
  const missing = run('save', 'nosuch', '-o', join(base, 'x.tar'));
  assert.is(missing.code, 1);
  const noOut = run('save', 'base');
  assert.is(noOut.code, 2);
  assert.match(noOut.err, /^overlay2: save: needs -o FILE — usage: overlay2 save TOP -o FILE/);
  assert.not.match(noOut.err, /save: save/);
});

test('a failed command leaves no new home behind; a good one keeps it (8)', () => {
  const fresh = join(base, 'new', 'dir');
  const badId = cli(fresh, ['create', 'a,b']);
  assert.is(badId.code, 2);
  assert.not.ok(existsSync(join(base, 'new')), 'an invalid id: nothing opened');
  const noParent = cli(fresh, ['create', 'x', '--parent', 'nosuch']);
  assert.is(noParent.code, 1);
  assert.match(noParent.err, /parent layer nosuch does not exist/);
  assert.not.ok(existsSync(join(base, 'new')), 'the home (and the directory above it) this call made is gone');
  // a home that was there stays, whatever the failure
  assert.is(run('create', 'x', '--parent', 'nosuch').code, 1);
  assert.ok(existsSync(join(home, 'l')));
  // and a command that succeeds makes the home
  assert.is(cli(fresh, ['create', 'x']).code, 0);
  assert.ok(readdirSync(fresh).includes('x'));
});

test('a file that is not a tar: apply and load say so, as GNU tar does (9)', () => {
  const text = join(base, 'notes.txt');
  writeFileSync(text, 'hello world\n'); // 12 bytes: shorter than one tar header
  const noise = join(base, 'noise.bin');
  writeFileSync(noise, Buffer.alloc(4096, 0x41)); // a whole block that is no header
  assert.is(run('create', 'nt').code, 0);
  const NOT_A_TAR = /^overlay2: bad archive: the input is not a tar archive, plain or compressed \(gzip, zstd, xz, bzip2\)( in layer nt)?\n$/;
  for (const r of [run('apply', 'nt', '-i', text), cli(home, ['apply', 'nt'], { input: 'hello world\n' }), run('apply', 'nt', '-i', noise),
    run('load', text), cli(home, ['load', '-'], { input: 'hello world\n' }), run('load', noise)]) {
    assert.is(r.code, 1, r.err);
    assert.match(r.err, NOT_A_TAR);
    assert.not.match(r.err, /truncated|checksum/);
  }
  assert.is(run('diffsize', 'nt').out, '0\n', 'the layer is as it was');
});

test('unmount of a layer that is not mounted: exit 0, said on stderr; of one that is, silent (15)', () => {
  assert.is(run('create', 'um', '--parent', 'base').code, 0);
  const never = run('unmount', 'um');
  assert.is(never.code, 0);
  assert.is(never.err, 'overlay2: layer um is not mounted; nothing to unmount\n');
  assert.is(run('mount', 'um').code, 0);
  const once = run('unmount', 'um');
  assert.is(once.code, 0);
  assert.is(once.err, '');
  assert.match(run('unmount', 'um').err, /not mounted/, 'the second unmount has nothing left to release');
  const ghost = run('unmount', 'ghost');
  assert.is(ghost.code, 1);
  assert.is(ghost.err, 'overlay2: layer ghost does not exist\n');
});

test.run();
