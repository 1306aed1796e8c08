// The CLI as a user runs it (the bin, dist/cli/overlay2.cjs): exit codes, one-line errors, JSON outputs,
// mount references shared between processes, safe homes.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import { existsSync, writeFileSync, readFileSync, mkdirSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mountTest, tempDir, removeTree, isMounted, testIf } from './support/env.js';

const test = mountTest(uvuTest);
const cli = CLI_BIN;
let base = '';
let home = '';

function runIn(h: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [cli, '--home', h, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const run = (...args: string[]) => runIn(home, ...args);
const oneLine = (s: string) => s.trim().length > 0 && !s.trim().includes('\n');

test.before(() => {
  base = tempDir();
  home = join(base, 'home');
  chmodSync(base, 0o755); // so an unprivileged user can reach the home and be refused for the right reason
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

test('options before or after the command', () => {
  run('create', 'opt-base');
  const after = spawnSync(process.execPath, [cli, 'create', 'opt-child', '--home', home, '--parent', 'opt-base'], { encoding: 'utf8' });
  assert.is(after.status, 0, after.stderr);
  const mixed = spawnSync(process.execPath, [cli, '--parent', 'opt-base', 'create', 'opt-2', `--home=${home}`], { encoding: 'utf8' });
  assert.is(mixed.status, 0, mixed.stderr);
  assert.is(run('exists', 'opt-child').code, 0);
  assert.is(JSON.parse(run('ls', '--json').out).find((l: { id: string }) => l.id === 'opt-2').parent, 'opt-base');
});

test('ls --json: id, parent, size, mounted', () => {
  run('create', 'j-base');
  run('create', 'j1', '--parent', 'j-base');
  const path = run('mount', 'j1').out.trim();
  writeFileSync(join(path, 'five'), '12345');
  const rows = JSON.parse(run('ls', '--json').out) as { id: string; parent: string; size: number; mounted: boolean }[];
  const j1 = rows.find((r) => r.id === 'j1')!;
  assert.equal(j1, { id: 'j1', parent: 'j-base', size: 5, mounted: true });
  assert.equal(rows.find((r) => r.id === 'j-base'), { id: 'j-base', parent: '', size: 0, mounted: false });
  assert.is(run('unmount', 'j1').code, 0);
  assert.is(JSON.parse(run('ls', '--json').out).find((r: { id: string }) => r.id === 'j1').mounted, false);
});

test('two mounts and one unmount from separate processes leave the layer mounted', () => {
  run('create', 'm-base');
  run('create', 'm1', '--parent', 'm-base');
  const r = run('mount', 'm1');
  assert.is(r.code, 0, r.err);
  const path = r.out.trim();
  assert.is(path, join(home, 'm1', 'merged'));
  assert.is(run('mount', 'm1').out.trim(), path);
  assert.is(run('unmount', 'm1').code, 0);
  assert.ok(isMounted(path), 'one reference left');
  assert.is(run('unmount', 'm1').code, 0);
  assert.not.ok(isMounted(path));
  assert.is(existsSync(path), false);
});

test('cleanup unmounts what other processes mounted', () => {
  run('create', 'c-base');
  run('create', 'c1', '--parent', 'c-base');
  const path = run('mount', 'c1').out.trim();
  run('mount', 'c1');
  assert.ok(isMounted(path));
  assert.is(run('cleanup').code, 0);
  assert.not.ok(isMounted(path));
  assert.not.ok(existsSync(join(home, '.refs', 'c1.json')));
});

test('status as text and JSON, with layer count and disk use', () => {
  const text = run('status');
  assert.match(text.out, /^Backing Filesystem: /m);
  assert.match(text.out, /^Layers: \d+$/m);
  const json = JSON.parse(run('status', '--json').out);
  assert.is(json['Native Overlay Diff'], 'true');
  assert.is(json.Layers, run('ls').out.trim().split('\n').length);
  assert.type(json['Disk Use'], 'number');
});

test('remove refuses a layer with children unless --force', () => {
  run('create', 'r-base');
  run('create', 'r1', '--parent', 'r-base');
  const refused = run('remove', 'r-base');
  assert.is(refused.code, 1);
  assert.ok(oneLine(refused.err));
  assert.match(refused.err, /r-base has 1 child layer \(r1\)/);
  assert.is(run('exists', 'r-base').code, 0);
  assert.is(run('remove', 'r-base', '--force').code, 0);
  assert.is(run('exists', 'r-base').code, 1);
});

test('diff | head: no EPIPE noise', () => {
  run('create', 'p-base');
  run('create', 'p1', '--parent', 'p-base');
  const path = run('mount', 'p1').out.trim();
  writeFileSync(join(path, 'big'), randomBytes(2 << 20));
  run('unmount', 'p1');
  const errFile = join(base, 'epipe.err');
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${cli}" --home "${home}" diff p1 2>"${errFile}" | head -c 100 >/dev/null`], { encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.is(readFileSync(errFile, 'utf8'), '');
});

test('apply -i of a missing file: one line, nothing changed', () => {
  run('create', 'a1');
  const r = run('apply', 'a1', '-i', '/nonexistent/layer.tar');
  assert.is(r.code, 1);
  assert.ok(oneLine(r.err), r.err);
  assert.match(r.err, /cannot read \/nonexistent\/layer\.tar/);
  assert.is(run('diffsize', 'a1').out.trim(), '0');
});

test('read-only commands on a missing home create nothing; exists exits 2 on errors', () => {
  const missing = join(base, 'no-such-home');
  for (const args of [['status'], ['ls'], ['exists', 'x'], ['metadata', 'x'], ['changes', 'x'], ['diffsize', 'x'], ['diff', 'x', '-o', join(base, 'x.tar')]]) {
    const r = runIn(missing, ...args);
    assert.ok(r.code! >= 1, args.join(' '));
    assert.ok(oneLine(r.err), r.err);
    assert.match(r.err, /no driver home/);
  }
  assert.is(runIn(missing, 'exists', 'x').code, 2);
  assert.not.ok(existsSync(missing));
});

test('a non-empty directory that is not a store and /proc are refused in one line', () => {
  const dir = join(base, 'someones');
  mkdirSync(dir);
  writeFileSync(join(dir, 'notes.txt'), '');
  const r = runIn(dir, 'create', 'x');
  assert.is(r.code, 1);
  assert.match(r.err, /not an overlay2 store/);
  const p = runIn('/proc', 'status');
  assert.is(p.code, 1);
  assert.ok(oneLine(p.err));
  assert.match(p.err, /on proc/);
});

test('errors: one line naming the id or option, exit 1; usage errors (a bad id or -o too) one line with a hint, exit 2', () => {
  const missing = run('create', 'x', '--parent', 'ghost');
  assert.is(missing.code, 1);
  assert.ok(oneLine(missing.err));
  assert.match(missing.err, /ghost/);
  assert.not.match(missing.err, /overlay2: overlay2:/);
  const badId = run('create', '..');
  assert.is(badId.code, 2);
  assert.match(badId.err, /^overlay2: create: invalid layer id "\.\.": a dot name — usage: overlay2 create ID/);
  const badOpt = spawnSync(process.execPath, [cli, '--home', home, '-o', 'overlay2.nope=1', 'ls'], { encoding: 'utf8' });
  assert.is(badOpt.status, 2);
  assert.match(badOpt.stderr, /overlay2\.nope/);
  for (const args of [['frobnicate'], ['create'], ['create', 'a', '--bogus'], ['create', 'a', 'b'], ['create', 'a', '--parent']]) {
    const r = run(...args);
    assert.is(r.code, 2, args.join(' '));
    assert.ok(oneLine(r.err), r.err);
  }
  assert.match(run('create').err, /^overlay2: create: needs ID — usage: overlay2 create ID/);
  assert.match(run('create', 'a', '--bogus').err, /unknown option --bogus/);
  assert.is(spawnSync(process.execPath, [cli], { encoding: 'utf8' }).status, 2);
});

const unprivileged = existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv');
testIf(unprivileged, 'the non-root CLI test', 'setpriv (util-linux) is not installed', test)('non-root: one line, needs root (CAP_SYS_ADMIN)', () => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, '--home', home, 'ls'], { encoding: 'utf8' });
  assert.is(r.status, 1, r.stderr);
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, /needs root \(CAP_SYS_ADMIN\)/);
});

test.run();
