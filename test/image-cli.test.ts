// The image commands as a user runs them: load (file, directory, stdin) prints the top layer and the
// config digest (--json: both, and more), save writes an archive skopeo reads, apply of an image
// archive fails in one line pointing at load, and the progress line obeys --progress / -q.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawnSync, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import * as fs from 'node:fs';
import { mountTest, testIf, tempDir, removeTree } from './support/env.js';
import { buildOciLayout, hasSkopeo, skopeo, type BuiltImage } from './image-fixtures.js';
import { chainIds } from '../src/image/digest.js';

const test = mountTest(uvuTest);
const withSkopeo = testIf(hasSkopeo, 'skopeo CLI save test', 'no skopeo (apt-get install skopeo)', test);
const cli = CLI_BIN;
let base = '';
let home = '';
let img: BuiltImage;
let top = '';

function run(args: string[], input?: Buffer) {
  const r = spawnSync(process.execPath, [cli, '--home', home, ...args], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test.before(() => {
  base = tempDir('ovl2-image-cli-');
  home = join(base, 'home');
  img = buildOciLayout(join(base, 'scratch'), join(base, 'oci'), [
    { files: { 'a/b': 'b'.repeat(3000) } },
    { files: { 'c': 'c' }, compress: 'none' },
  ]);
  top = chainIds(img.diffIds)[1].slice(7);
});
test.after(() => removeTree(base));

test('load prints "<top> <config digest>"; --json gives the results; --progress draws lines, -q none', () => {
  const r = run(['load', '--progress', img.layout]);
  assert.is(r.code, 0, r.err);
  assert.is(r.out, `${top} ${img.configDigest}\n`);
  assert.match(r.err, /^load .*entries.*\bin \d+:\d\d$/m);
  const j = run(['load', '--json', '-q', img.layout]);
  assert.is(j.err, '');
  const [res] = JSON.parse(j.out);
  assert.is(res.top, top);
  assert.is(res.configDigest, img.configDigest);
  assert.is(res.reused, 2);
  // not a terminal and not forced: no progress line
  assert.is(run(['load', img.layout]).err, '');
});

test('load - reads an archive from stdin; apply of an image archive points at load', () => {
  const tarFile = join(base, 'oci.tar');
  execFileSync('tar', ['-C', img.layout, '-cf', tarFile, '.']);
  const r = run(['load', '-'], fs.readFileSync(tarFile));
  assert.is(r.code, 0, r.err);
  assert.is(r.out, `${top} ${img.configDigest}\n`);
  run(['create', 'target']);
  const a = run(['apply', 'target', '-i', tarFile]);
  assert.is(a.code, 1);
  assert.is(a.err.trim().split('\n').length, 1);
  assert.match(a.err, /overlay2 load/);
  const missing = run(['load', join(base, 'missing.tar')]);
  assert.is(missing.code, 1);
  assert.is(missing.err.trim().split('\n').length, 1);
});

withSkopeo('save -o FILE --format oci --tag writes what skopeo reads; a docker save round-trips the digest', () => {
  run(['load', img.layout]);
  const out = join(base, 'saved.tar');
  const r = run(['save', top, '-o', out, '--format', 'oci', '--tag', 'x:1', '--progress']);
  assert.is(r.code, 0, r.err);
  assert.is(r.out.trim(), img.configDigest);
  assert.match(r.err, /^save /m);
  assert.equal(JSON.parse(skopeo('inspect', `oci-archive:${out}:x:1`)).Layers, img.diffIds);
  const bad = run(['save', top, '-o', join(base, 'x.tar'), '--format', 'zip']);
  assert.is(bad.code, 2, 'a bad --format is a usage error');
  assert.match(bad.err, /format/);
  assert.is(run(['save', top]).code, 2);
});

test.run();
