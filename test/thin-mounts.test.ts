// Thin roots on real file systems — a read-only bind mount, loop-mounted read-only ext4 / erofs /
// squashfs images holding whiteouts and opaque dirs — and cvmfsMountMethod=internal with a mount
// command the test provides: run once per repository, counted per user across containers, unmounted
// after the last and on cleanup, failures and timeouts as ERR_THIN_ROOT_NOT_MOUNTED.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { loadShim } from '../src/native/shim.js';
import { RepoMounts } from '../src/thin/repo-mounts.js';
import { mountTest, tempDir, removeTree, isMounted, rejectsWithCode, have } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { STANDARD_TREES, STANDARD_VIEW, mountImage, publishTrees, snapshot, thinTarOf } from './thin-fixtures.js';

/** path and kind of each change (the API's pathBytes is covered by test/byte-names). */
const pathsAndKinds = (list: { path: string; kind: string }[]) => list.map(({ path, kind }) => ({ path, kind }));

const test = mountTest(uvuTest);
const cli = CLI_BIN;
let base = '';

test.before(() => { base = tempDir('ovl2-thinmnt-'); });
test.after(() => removeTree(base));

const filesystems = readFileSync('/proc/filesystems', 'utf8');
const canLoop = (kind: string, tool: string) => have(tool) && filesystems.includes(`\t${kind}\n`) && existsSync('/dev/loop-control');

/** A driver on a fresh home with `options`; a thin image of STANDARD_TREES in `repo` applied as 'thin';
 *  returns the driver. The trees are expected under the root already. */
async function homeWithThinImage(name: string, options: string[], refs: ReturnType<typeof publishTrees>): Promise<Overlay2Driver> {
  const d = await Overlay2Driver.init(join(base, name), options);
  await d.create('thin');
  await d.applyDiff('thin', null, thinTarOf(refs));
  await d.create('thin-init', 'thin');
  return d;
}

async function containerView(d: Overlay2Driver, id: string): Promise<Record<string, string>> {
  await d.createReadWrite(id, 'thin-init');
  const v = snapshot(await d.get(id));
  await d.put(id);
  return v;
}

test('the root as a read-only bind mount', async () => {
  const src = join(base, 'bind-src');
  const refs = publishTrees(src, 'ro.example.org', STANDARD_TREES);
  const root = join(base, 'bind-root');
  mkdirSync(root);
  execFileSync('mount', ['--bind', src, root]);
  execFileSync('mount', ['-o', 'remount,bind,ro', root]);
  const d = await homeWithThinImage('bind-home', [`thin.root=${root}`, 'cvmfsMountMethod=external'], refs);
  try {
    assert.equal(await containerView(d, 'c'), STANDARD_VIEW);
  } finally {
    await d.cleanup();
  }
  assert.ok(isMounted(root), 'cleanup leaves an external root alone');
  execFileSync('umount', [root]);
});

for (const [kind, tool] of [['ext4', 'mkfs.ext4'], ['erofs', 'mkfs.erofs'], ['squashfs', 'mksquashfs']] as const) {
  const t = canLoop(kind, tool) ? test : (await import('./support/env.js')).testIf(false, `thin root on ${kind}`, `needs ${tool}, ${kind} in /proc/filesystems and loop devices`, test);
  t(`the root as a loop-mounted read-only ${kind} image holding whiteouts and opaque dirs`, async () => {
    const src = join(base, `${kind}-src`);
    const refs = publishTrees(src, `${kind}.example.org`, STANDARD_TREES);
    const root = join(base, `${kind}-root`);
    mountImage(kind, src, join(base, `${kind}.img`), root);
    const d = await homeWithThinImage(`${kind}-home`, [`thin.root=${root}`], refs);
    try {
      assert.equal(await containerView(d, 'c'), STANDARD_VIEW);
    } finally {
      await d.cleanup();
      execFileSync('umount', [root]);
    }
  });
}

/** A mount command as a site would write one: logs its argv, loop-mounts <dir>/images/<repo>.img. */
function writeMountCommand(dir: string): { command: string; calls: () => string[] } {
  mkdirSync(join(dir, 'images'), { recursive: true });
  const command = join(dir, 'mount-repo');
  writeFileSync(command, `#!/bin/sh
printf '%s|%s|%s\\n' "$#" "$1" "$2" >> "${dir}/calls.log"
exec mount -o loop,ro -t ext4 "${dir}/images/$1.img" "$2"
`);
  chmodSync(command, 0o755);
  return { command, calls: () => (existsSync(join(dir, 'calls.log')) ? readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n') : []) };
}

test('internal: the mount command runs once per repository, counted across containers, unmounted after the last', async () => {
  const dir = join(base, 'internal');
  const { command, calls } = writeMountCommand(dir);
  const src = join(dir, 'src');
  const refsA = publishTrees(src, 'a.example.org', STANDARD_TREES);
  const refsB = publishTrees(src, 'b.example.org', [['b-only', { 'from-b': 'b\n' }]]);
  for (const repo of ['a.example.org', 'b.example.org']) {
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', join(src, repo), join(dir, 'images', `${repo}.img`), '16M'], { stdio: 'pipe' });
  }
  const root = join(dir, 'root');
  const d = await homeWithThinImage('internal-home', [`thin.root=${root}`, `thin.mount_command=${command}`], [...refsA, ...refsB]);
  const repoA = join(root, 'a.example.org'), repoB = join(root, 'b.example.org');
  try {
    assert.equal(calls(), []); // nothing mounted at apply or create
    await d.createReadWrite('c1', 'thin-init');
    await d.createReadWrite('c2', 'thin-init');
    const m1 = await d.get('c1');
    const v = snapshot(m1);
    writeFileSync(join(m1, 'etc', 'os-release'), 'changed\n');
    assert.is(v['/from-b'], 'b\n');
    assert.is(v['/etc/os-release'], 'middle\n');
    assert.equal(calls().sort(), [`2|a.example.org|${repoA}`, `2|b.example.org|${repoB}`]);
    assert.ok(isMounted(repoA) && isMounted(repoB));
    await d.get('c2');
    await d.get('c1'); // a second reference of the same container
    assert.is(calls().length, 2);
    await d.put('c1');
    await d.put('c1');
    assert.ok(isMounted(repoA), 'c2 still uses it');
    await d.put('c2');
    assert.ok(!isMounted(repoA) && !isMounted(repoB), 'unmounted after the last user');
    // docker diff of a stopped container: the native changes read the trees, mounted for the call
    assert.equal(pathsAndKinds(await d.changes('c1', 'thin-init')), [{ path: '/etc', kind: 'C' }, { path: '/etc/os-release', kind: 'C' }]);
    assert.ok(!isMounted(repoA) && !isMounted(repoB), 'and released after it');
    // used again: mounted again; cleanup takes it down
    await d.get('c2');
    assert.is(calls().length, 6);
    await d.cleanup();
    assert.ok(!isMounted(repoA) && !isMounted(repoB));
    assert.ok(!isMounted(join(base, 'internal-home', 'c2', 'merged')));
    // the CLI's mounts outlive the process that made them; the unmount of another process releases
    const env = { ...process.env };
    const opt = ['--home', join(base, 'internal-home'), '-o', `thin.root=${root}`, '-o', `thin.mount_command=${command}`];
    const m = spawnSync(process.execPath, [cli, ...opt, 'mount', 'c1'], { encoding: 'utf8', env });
    assert.is(m.status, 0, m.stderr);
    assert.ok(isMounted(repoA) && isMounted(m.stdout.trim()));
    const u = spawnSync(process.execPath, [cli, ...opt, 'unmount', 'c1'], { encoding: 'utf8', env });
    assert.is(u.status, 0, u.stderr);
    assert.ok(!isMounted(repoA) && !isMounted(repoB), 'the last unmount, in another process, released the repositories');
  } finally {
    await d.cleanup();
  }
});

test('internal: a failing, silent or hanging mount command is ERR_THIN_ROOT_NOT_MOUNTED; nothing stays mounted', async () => {
  const dir = join(base, 'failing');
  mkdirSync(dir, { recursive: true });
  const script = (name: string, body: string) => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`);
    chmodSync(p, 0o755);
    return p;
  };
  const root = join(dir, 'root');
  const shim = loadShim();
  const failing = new RepoMounts(shim, { root, command: script('fails', 'echo "no such repository: $1" >&2; exit 3') });
  const e1 = await rejectsWithCode(() => failing.acquire(['r.example.org']), 'ERR_THIN_ROOT_NOT_MOUNTED');
  assert.match(e1.message, /no such repository: r\.example\.org/);
  assert.is(failing.count('r.example.org'), 0);
  const silent = new RepoMounts(shim, { root, command: script('silent', 'exit 0') });
  assert.match((await rejectsWithCode(() => silent.acquire(['r']), 'ERR_THIN_ROOT_NOT_MOUNTED')).message, /nothing is mounted/);
  const hanging = new RepoMounts(shim, { root, command: script('hangs', 'exec sleep 30'), timeoutMs: 300 });
  const started = Date.now();
  assert.match((await rejectsWithCode(() => hanging.acquire(['r']), 'ERR_THIN_ROOT_NOT_MOUNTED')).message, /timed out/);
  assert.ok(Date.now() - started < 10_000);
  // through the driver: the container's get fails with the code, no overlay and no repository left
  const src = join(dir, 'src');
  const refs = publishTrees(src, 'r.example.org', [['t', { f: '1' }]]);
  const d = await homeWithThinImage('failing-home', [`thin.root=${root}`, `thin.mount_command=${join(dir, 'fails')}`], refs);
  try {
    await d.createReadWrite('c', 'thin-init');
    await rejectsWithCode(() => d.get('c'), 'ERR_THIN_ROOT_NOT_MOUNTED');
    assert.ok(!isMounted(join(base, 'failing-home', 'c', 'merged')));
  } finally {
    await d.cleanup();
  }
  // a repository mounted but the tree missing: the repository is released again
  const { command } = writeMountCommand(join(dir, 'ok'));
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', join(src, 'r.example.org'), join(dir, 'ok', 'images', 'r.example.org.img'), '16M'], { stdio: 'pipe' });
  const missing = JSON.stringify({ version: '1.0', layers: [{ digest: refs[0].digest, url: 'cvmfs://r.example.org/layers/not-there' }] });
  const d2 = await Overlay2Driver.init(join(base, 'missing-home'), [`thin.root=${root}`, `thin.mount_command=${command}`]);
  try {
    const { manifestTar } = await import('../src/thin/manifest-tar.js');
    await d2.create('t');
    await d2.applyDiff('t', null, manifestTar(Buffer.from(missing)));
    await d2.createReadWrite('c', 't');
    await rejectsWithCode(() => d2.get('c'), 'ERR_THIN_LAYER_MISSING');
    assert.ok(!isMounted(join(root, 'r.example.org')));
  } finally {
    await d2.cleanup();
  }
  void cpSync;
});

test.run();
