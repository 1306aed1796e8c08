// The CLI's edges as a user meets them through the bin (issue 23, items 7-15): usage errors exit 2 and
// say what would be right, a failed call leaves no new home, a file that is not a tar is called so,
// progress speaks one vocabulary, Ctrl-C exits 130 without a completion line, an interrupted apply
// shows in read-only commands and in status, unmount of a layer that is not mounted says so.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/** A layer tar of `files` (name → bytes) made by GNU tar, as a user would. */
function tarOf(name: string, files: Record<string, Buffer | string>): string {
  const dir = join(base, `${name}-src`);
  mkdirSync(dir);
  for (const [f, data] of Object.entries(files)) writeFileSync(join(dir, f), data);
  const tar = join(base, `${name}.tar`);
  assert.is(spawnSync('tar', ['-cf', tar, '-C', dir, ...Object.keys(files)]).status, 0);
  return tar;
}
const FINAL = /^(\w+)  [\d.]+ \w+ of [\d.]+ \w+ \(100%\)  (\d+) (entry|entries)  [\d.]+ \w+\/s  in \d+:\d\d$/;
const progressLines = (err: string) => err.split('\n').filter((l) => /^(apply|save|diff|load)  /.test(l));

test('progress: apply -i FILE and apply < FILE know the size; save counts layer entries and ends at 100%; diff says 1 entry (10)', () => {
  const tar = tarOf('prog', { a: Buffer.alloc(3 << 20, 1), b: 'bee\n', c: 'sea\n' });
  assert.is(run('create', 'pr').code, 0);
  const a = run('apply', 'pr', '-i', tar, '--progress');
  assert.is(a.code, 0, a.err);
  const lines = progressLines(a.err);
  assert.ok(lines.length >= 1, a.err);
  for (const l of lines) assert.match(l, /^apply  \S+ \S+ of \S+ \S+ \(\d+%\)  \d+ entr/, 'every line knows the total');
  const last = FINAL.exec(lines.at(-1)!);
  assert.ok(last, lines.at(-1));
  assert.is(last![2], '3');
  assert.is(run('create', 'pr2').code, 0);
  const stdin = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI_BIN}" --home "${home}" apply pr2 --progress < "${tar}"`], { encoding: 'utf8' });
  assert.is(stdin.status, 0, stdin.stderr);
  assert.match(progressLines(stdin.stderr).at(-1)!, FINAL, 'stdin redirected from a file: its size is known too');

  const s = run('save', 'pr', '-o', join(base, 'pr.tar'), '--progress');
  assert.is(s.code, 0, s.err);
  const saved = progressLines(s.err);
  const end = FINAL.exec(saved.at(-1)!);
  assert.ok(end, saved.at(-1));
  assert.is(end![2], '3', 'entries: the tar entries of the layers, not the archive members');
  for (const l of saved.slice(0, -1)) {
    assert.not.match(l, /\(100%\)/, 'only the end is 100%');
    const eta = /ETA (\d+):/.exec(l);
    assert.ok(!eta || Number(eta[1]) < 10, `a sane ETA: ${l}`);
  }

  assert.is(run('create', 'one').code, 0);
  assert.is(run('apply', 'one', '-i', tarOf('one', { only: 'x\n' })).code, 0);
  const d = run('diff', 'one', '-o', join(base, 'one-out.tar'), '--progress');
  assert.is(d.code, 0, d.err);
  assert.match(progressLines(d.err).at(-1)!, /^diff  \S+ \S+  1 entry  \S+ \S+\/s  in \d+:\d\d$/);
});

/** Starts `apply ID --progress` reading a pipe that gets the first 2 MiB of `tar` and then stalls;
 *  resolves once the progress line shows, with the child. */
async function stalledApply(id: string, tar: Buffer) {
  const child = spawn(process.execPath, [CLI_BIN, '--home', home, 'apply', id, '--progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdin!.on('error', () => undefined); // the pipe's reader is killed on purpose
  child.stdin!.write(tar.subarray(0, 2 << 20));
  for (let i = 0; i < 200 && !err.includes('apply  '); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(err, /^apply  /m, 'the progress line is up');
  return { child, exited, err: () => err };
}

test('Ctrl-C (SIGINT) exits 130, SIGTERM 143: promptly, no completion line, the layer as it was (11)', async () => {
  const big = readFileSync(tarOf('int', { big: Buffer.alloc(6 << 20, 7) }));
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const id = `int-${code}`;
    assert.is(run('create', id).code, 0);
    const { child, exited, err } = await stalledApply(id, big);
    const at = Date.now();
    child.kill(signal);
    assert.is(await exited, code, err());
    assert.ok(Date.now() - at < 5000, 'an idle pipe does not hold the interrupt up');
    assert.not.match(err(), /in \d+:\d\d/, 'no completion line for work that did not complete');
    assert.match(err(), new RegExp(`\\noverlay2: apply interrupted \\(${signal}\\)\\n$`));
    child.stdin!.destroy();
    assert.is(run('diffsize', id).out, '0\n');
    assert.equal(readdirSync(join(home, id)).sort(), ['diff', 'link']);
  }
});

test('after kill -9 mid-apply: ls and exists show the layer as incomplete, status the space it holds; the next write clears it (12)', async () => {
  const big = readFileSync(join(base, 'int.tar'));
  assert.is(run('create', 'killed').code, 0);
  const { child, exited } = await stalledApply('killed', big);
  child.kill('SIGKILL');
  await exited;
  child.stdin!.destroy();
  const staging = readdirSync(join(home, 'killed')).filter((n) => n.startsWith('.staging-diff-'));
  assert.is(staging.length, 1, 'the dead apply left its staging dir');

  const ls = run('ls');
  assert.is(ls.code, 0);
  assert.ok(ls.out.split('\n').includes('killed'), 'stdout stays a list of ids');
  assert.match(ls.err, /^overlay2: layer killed is incomplete: an apply into it was interrupted/m);
  const rows = JSON.parse(run('ls', '--json').out) as { id: string; incomplete?: string }[];
  assert.match(rows.find((r) => r.id === 'killed')!.incomplete!, /apply into it was interrupted/);
  assert.is(rows.find((r) => r.id === 'base')!.incomplete, undefined);
  const ex = run('exists', 'killed');
  assert.is(ex.code, 2, 'exists: 2, an incomplete layer');
  assert.match(ex.err, /^overlay2: layer killed is incomplete: /);
  assert.is(run('exists', 'base').code, 0);

  const status = run('status');
  const stale = /^Stale Work: (\d+) bytes in 1 leftover of interrupted work/m.exec(status.out);
  assert.ok(stale, status.out);
  // what the apply had written when it was killed (how much depends on the machine's speed)
  assert.ok(Number(stale![1]) > 0, `the staging dir's bytes: ${stale![1]}`);
  assert.is(JSON.parse(run('status', '--json').out)['Stale Work'], Number(stale![1]));
  // all of that was read-only: the leftover is still there
  assert.is(readdirSync(join(home, 'killed')).filter((n) => n.startsWith('.staging-diff-')).length, 1);

  // the next command that writes clears it: the layer is its empty self again
  assert.is(run('create', 'after-kill').code, 0);
  assert.is(run('exists', 'killed').code, 0);
  assert.is(run('ls').err, '');
  assert.match(run('status').out, /^Stale Work: 0 bytes$/m);
});

test.run();
