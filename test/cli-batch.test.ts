// `overlay2 batch` through the installed bin (one process, many command lines), the bundled bin's
// launcher when its code cache is missing or rejected, and the feature cache as the CLI meets it.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { release } from 'node:os';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { CLI_BIN } from './support/cli.js';
import { mountTest, tempDir, removeTree, isMounted } from './support/env.js';
import { splitWords } from '../src/cli/batch.js';
import { FEATURE_CACHE_FILE } from '../src/feature-cache.js';

const test = mountTest(uvuTest);
let base = '';

function bin(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [CLI_BIN, ...args], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test.before(() => { base = tempDir('ovl2-batch-'); });
test.after(() => removeTree(base));

uvuTest('batch lines split as a shell splits plain words, nothing expanded', () => {
  assert.equal(splitWords('create  l1\t--parent base'), ['create', 'l1', '--parent', 'base']);
  assert.equal(splitWords(`create 'a b' "c \\"d\\" \\\\" e\\ f`), ['create', 'a b', 'c "d" \\', 'e f']);
  assert.equal(splitWords(`x '' "" $HOME *`), ['x', '', '', '$HOME', '*']);
  assert.equal(splitWords('a"b"\'c\''), ['abc']);
  assert.throws(() => splitWords('create "open'), /unterminated " quote/);
  assert.throws(() => splitWords("create 'open"), /unterminated ' quote/);
  assert.throws(() => splitWords('create x\\'), /backslash ends the line/);
});

test('one result line per command, in order; failures do not stop it; the exit status is the worst', () => {
  const home = join(base, 'h1');
  const script = [
    'create base',
    'create l1 --parent base',
    '# a comment, then a blank line',
    '',
    'exists l1',
    'exists nope',
    'ls',
    'metadata l1',
    'mount l1',
    'unmount l1',
    'create l1',
    'frobnicate',
    'exists "unterminated',
    'ls --json',
  ].join('\n') + '\n';
  const r = bin(['--home', home, 'batch'], script);
  assert.is(r.code, 2, r.err);
  assert.is(r.err, '');
  const lines = r.out.split('\n').slice(0, -1);
  assert.is(lines.length, 12, r.out);
  assert.is(lines[0], '0');
  assert.is(lines[1], '0');
  assert.is(lines[2], '0');
  assert.is(lines[3], '1');
  assert.is(lines[4], '0 base l1');
  const meta = JSON.parse(lines[5]!.slice(2));
  assert.is(meta.UpperDir, join(home, 'l1', 'diff'));
  assert.is(lines[6], `0 ${join(home, 'l1', 'merged')}`);
  assert.is(lines[7], '0');
  assert.not.ok(isMounted(join(home, 'l1', 'merged')), 'the batch\'s unmount released its own mount');
  assert.match(lines[8]!, /^1 overlay2: layer l1 already exists$/);
  assert.match(lines[9]!, /^2 overlay2: unknown command "frobnicate" — see overlay2 help$/);
  assert.match(lines[10]!, /^2 overlay2: batch line 13: unterminated " quote$/);
  assert.equal(JSON.parse(lines[11]!.slice(2)).map((l: { id: string }) => l.id), ['base', 'l1']);
  // the same home seen by a separate call
  assert.is(bin(['--home', home, 'exists', 'l1']).code, 0);
});

test('--json, -f FILE, a line\'s own --home, and what cannot share the batch\'s stdin/stdout', () => {
  const home = join(base, 'h2');
  const other = join(base, 'h3');
  const file = join(base, 'cmds.txt');
  writeFileSync(file, [
    'create a',
    `create b --home ${other}`,
    'exists b',
    `exists b --home ${other}`,
    'diff a',
    'apply a',
    'load -',
    'plugin',
    'batch',
    'exists a b',
  ].join('\n'));
  const r = bin(['batch', '-f', file, '--json', '--home', home]);
  assert.is(r.code, 2, r.err);
  const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as { line: number; exit: number; output: string; error?: string });
  assert.equal(rows.map((x) => [x.line, x.exit]), [[1, 0], [2, 0], [3, 1], [4, 0], [5, 2], [6, 2], [7, 2], [8, 2], [9, 2], [10, 2]]);
  assert.match(rows[4]!.error!, /^overlay2: diff: needs -o FILE in a batch — usage/);
  assert.match(rows[5]!.error!, /^overlay2: apply: needs -i FILE in a batch/);
  assert.match(rows[6]!.error!, /^overlay2: load: cannot read stdin in a batch/);
  assert.match(rows[7]!.error!, /^overlay2: plugin: cannot run inside a batch/);
  assert.match(rows[8]!.error!, /^overlay2: batch: cannot run inside a batch/);
  assert.match(rows[9]!.error!, /unexpected argument "b"/);
  assert.not.ok(rows[0]!.error);
  // apply with -i, diff with -o: the layer's tar goes to the file, not into the results
  const tar = join(base, 'layer.tar');
  const src = join(base, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'hello'), 'hi\n');
  assert.is(spawnSync('tar', ['-cf', tar, '-C', src, 'hello']).status, 0);
  const out = join(base, 'out.tar');
  const d = bin(['--home', home, 'batch'], `apply a -i ${tar}\ndiff a -o ${out}\nchanges a\n`);
  assert.is(d.code, 0, d.out + d.err);
  assert.equal(d.out.split('\n'), ['0 3', '0', '0 A /hello', '']);
  assert.match(spawnSync('tar', ['-tf', out], { encoding: 'utf8' }).stdout, /^hello$/m);
});

test('batch with no lines exits 0 and prints nothing; a missing -f FILE is one line', () => {
  const home = join(base, 'h4');
  const r = bin(['--home', home, 'batch'], '');
  assert.is(r.code, 0);
  assert.is(r.out, '');
  const m = bin(['--home', home, 'batch', '-f', join(base, 'missing.txt')]);
  assert.is(m.code, 1);
  assert.match(m.err, /^overlay2: cannot read .*missing\.txt: no such file\n$/);
});

test('the CLI revalidates the feature cache: a planted answer is used while the key matches, refused when the kernel or version differs', () => {
  const home = join(base, 'h5');
  assert.is(bin(['--home', home, 'create', 'x']).code, 0);
  const file = join(home, FEATURE_CACHE_FILE);
  const cache = JSON.parse(readFileSync(file, 'utf8'));
  assert.is(cache.key.kernel, release());
  const real = cache.features.backingFs as string;
  const backingFs = () => JSON.parse(bin(['--home', home, 'status', '--json']).out)['Backing Filesystem'] as string;
  cache.features.backingFs = 'planted';
  writeFileSync(file, JSON.stringify(cache));
  assert.is(backingFs(), 'planted');
  for (const stale of [{ kernel: '1.2.3-other' }, { version: '0.0.0-old' }, { dev: cache.key.dev + 1 }]) {
    writeFileSync(file, JSON.stringify({ ...cache, key: { ...cache.key, ...stale } }));
    assert.is(backingFs(), real, JSON.stringify(stale));
  }
  // a read-only command does not rewrite it; the next writing one does, with this kernel's key
  assert.is(JSON.parse(readFileSync(file, 'utf8')).key.dev, cache.key.dev + 1);
  assert.is(bin(['--home', home, 'create', 'y']).code, 0);
  const fresh = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(fresh.key, cache.key);
  assert.is(fresh.features.backingFs, real);
});

test('exists through the bin loads the driver but none of the streaming modules; the shipped code cache is accepted', () => {
  // why the driver reaches apply/export/changes/size/image through import(): a CLI call pays for every
  // module it evaluates, and these (node:stream, child_process, zlib, crypto, tar-stream) are ~10 ms of it
  const home = join(base, 'lazy');
  assert.is(bin(['--home', home, 'create', 'a']).code, 0);
  const probe = join(base, 'probe.cjs');
  writeFileSync(probe, `
    const { Script } = require('node:vm');
    const created = [];
    const Original = Script;
    require('node:vm').Script = class extends Original {
      constructor(src, opts) { super(src, opts); if (opts && opts.cachedData) created.push(this); }
    };
    process.on('exit', () => {
      const loaded = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
      const pkgs = Object.keys(require.cache).filter((f) => f.includes('node_modules'));
      process._rawDebug(JSON.stringify({ loaded, pkgs, rejected: created.map((s) => s.cachedDataRejected) }));
    });`);
  const r = spawnSync(process.execPath, ['-r', probe, CLI_BIN, '--home', home, 'exists', 'a'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stderr.trim().split('\n').pop()!) as { loaded: string[]; pkgs: string[]; rejected: boolean[] };
  for (const heavy of ['stream', 'child_process', 'zlib', 'crypto', 'net']) {
    assert.not.ok(seen.loaded.includes(heavy), `exists loaded node:${heavy}`);
  }
  assert.equal(seen.pkgs, [], 'exists loaded no npm package');
  assert.equal(seen.rejected, [false], 'the bin ran with its code cache, and V8 accepted it');
});

uvuTest('the bundle is strict code, as the ES modules it is made of', () => {
  // a directive only counts first: a banner line before it would leave the whole CLI in sloppy mode
  assert.ok(readFileSync(join(process.cwd(), 'dist', 'cli', 'bundle.cjs'), 'utf8').startsWith("'use strict';\n"));
});

uvuTest('the bin works without its code cache, and with one V8 rejects', () => {
  // a package root of its own: package.json and the three files of dist/cli
  const root = join(tempDir('ovl2-launcher-'), 'pkg');
  const cliDir = join(root, 'dist', 'cli');
  mkdirSync(cliDir, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version }));
  for (const f of ['overlay2.cjs', 'bundle.cjs']) copyFileSync(join(process.cwd(), 'dist', 'cli', f), join(cliDir, f));
  try {
    for (const cache of [null, Buffer.from('not a V8 code cache')]) {
      if (cache) writeFileSync(join(cliDir, 'bundle.cjs.cache'), cache);
      const v = spawnSync(process.execPath, [join(cliDir, 'overlay2.cjs'), '--version'], { encoding: 'utf8' });
      assert.is(v.status, 0, v.stderr);
      assert.is(v.stdout, `overlay2 ${pkg.version}\n`);
      const u = spawnSync(process.execPath, [join(cliDir, 'overlay2.cjs'), 'exists'], { encoding: 'utf8' });
      assert.is(u.status, 2);
      assert.match(u.stderr, /^overlay2: exists: needs ID — usage: overlay2 exists ID/);
    }
  } finally {
    removeTree(join(root, '..'));
  }
});

test.run();
