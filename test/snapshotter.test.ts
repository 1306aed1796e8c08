// The snapshotter as containerd's proxy client reaches it: `overlay2 snapshotter` (the installed bin) on
// a unix socket, called over gRPC with the package's own .proto. Every RPC, every error class containerd
// maps, the mounts' shape (and that they mount), restarts, a kill -9, and the store's CLI on its layers.
// The same service under a real containerd: test/containerd*.test.ts.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, statSync, symlinkSync, linkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mountTest, tempDir, removeTree } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { SnapshotsClient, failure, startSnapshotter, type RunningSnapshotter } from './support/snapshots-client.js';

const test = mountTest(uvuTest);
/** kill -9 trials (FAULT_TRIALS, as the other fault tests; bench/faults.ts runs many) */
const TRIALS = Number(process.env.FAULT_TRIALS ?? 4);
let dir = '';
let home = '';
let socket = '';
let running: RunningSnapshotter;
let client: SnapshotsClient;

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8' });
const layerDirs = () => readdirSync(home).filter((n) => n !== 'l' && !n.startsWith('.')).sort();
const optionOf = (opts: string[], name: string) => opts.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);

async function restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  client.close();
  const code = await running.stop(signal);
  running = await startSnapshotter(home, socket);
  client = new SnapshotsClient(socket);
  return code;
}

test.before(async () => {
  try {
    await setUp();
  } catch (e) {
    // uvu counts a failed before hook as every test failing but prints nothing of why
    console.error('!! snapshotter set-up failed:', e);
    throw e;
  }
});

async function setUp(): Promise<void> {
  dir = tempDir('ovl2-snap-');
  home = join(dir, 'home');
  socket = join(dir, 'run', 'snap.sock');
  running = await startSnapshotter(home, socket);
  client = new SnapshotsClient(socket);
}
test.after(async () => {
  client?.close();
  await running?.stop();
  removeTree(dir);
});

test('the socket is the user\'s alone (0600 in a 0700 directory made for it)', () => {
  assert.is(statSync(socket).mode & 0o777, 0o600);
  assert.is(statSync(join(dir, 'run')).mode & 0o777, 0o700);
});

test('Prepare with no parent: a rw bind of the snapshot\'s own upper dir; a view: ro', async () => {
  const m = await client.prepare('ns/1/base', '', { a: 'b' });
  assert.is(m.length, 1);
  assert.is(m[0]!.type, 'bind');
  assert.equal(m[0]!.options, ['rw', 'rbind']);
  assert.ok(m[0]!.source.startsWith(home + '/') && m[0]!.source.endsWith('/diff'), m[0]!.source);
  assert.ok(existsSync(m[0]!.source));
  assert.equal(await client.mounts('ns/1/base'), m);
  const v = await client.view('ns/1/view0');
  assert.equal(v[0]!.options, ['ro', 'rbind']);
  const info = await client.stat('ns/1/base');
  assert.is(info.kind, 'ACTIVE');
  assert.is(info.parent, '');
  assert.equal(info.labels, { a: 'b' });
  assert.ok(Math.abs(info.createdAt.seconds * 1000 - Date.now()) < 60_000);
  assert.is((await client.stat('ns/1/view0')).kind, 'VIEW');
});

test('containerd\'s errors: ALREADY_EXISTS, NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION', async () => {
  assert.is((await failure(client.prepare('ns/1/base'))).code, 'ALREADY_EXISTS');
  assert.is((await failure(client.prepare('ns/1/x', 'no-such-parent'))).code, 'NOT_FOUND');
  // the parent must be committed
  const notCommitted = await failure(client.prepare('ns/1/x', 'ns/1/base'));
  assert.is(notCommitted.code, 'INVALID_ARGUMENT');
  assert.match(notCommitted.details, /not a committed snapshot/);
  assert.is((await failure(client.prepare(''))).code, 'INVALID_ARGUMENT');
  assert.is((await failure(client.stat('ns/1/none'))).code, 'NOT_FOUND');
  assert.is((await failure(client.mounts('ns/1/none'))).code, 'NOT_FOUND');
  assert.is((await failure(client.remove('ns/1/none'))).code, 'NOT_FOUND');
  assert.is((await failure(client.usage('ns/1/none'))).code, 'NOT_FOUND');
  assert.is((await failure(client.commit('ns/2/c', 'ns/1/none'))).code, 'NOT_FOUND');
  // a view is not active: it cannot be committed
  assert.is((await failure(client.commit('ns/2/v', 'ns/1/view0'))).code, 'FAILED_PRECONDITION');
  // a label over containerd's 4096-byte limit
  assert.is((await failure(client.prepare('ns/1/big', '', { k: 'x'.repeat(5000) }))).code, 'INVALID_ARGUMENT');
  // no raw errno text in any message
  for (const e of [notCommitted]) assert.not.match(e.details, /E[A-Z]+:|errno/);
  // none of the failed calls left a layer behind: base and view0 only
  assert.is(layerDirs().length, 2);
});

test('Commit: the active snapshot becomes a committed layer under its name, labels replaced, usage kept', async () => {
  const upper = (await client.mounts('ns/1/base'))[0]!.source;
  writeFileSync(join(upper, 'hello'), 'hello\n');
  mkdirSync(join(upper, 'etc'));
  writeFileSync(join(upper, 'etc', 'big'), Buffer.alloc(100_000, 1));
  linkSync(join(upper, 'etc', 'big'), join(upper, 'etc', 'big-link'));
  symlinkSync('hello', join(upper, 'hi'));
  const active = await client.usage('ns/1/base');
  const du = (flag: string) => Number(execFileSync('du', ['-s', flag, upper], { encoding: 'utf8' }).split('\t')[0]);
  assert.is(active.size, du('-B1'));
  assert.is(active.inodes, du('--inodes'));
  await client.commit('ns/2/sha256:base', 'ns/1/base', { 'containerd.io/snapshot.ref': 'sha256:base' });
  assert.is((await failure(client.stat('ns/1/base'))).code, 'NOT_FOUND');
  const info = await client.stat('ns/2/sha256:base');
  assert.is(info.kind, 'COMMITTED');
  assert.equal(info.labels, { 'containerd.io/snapshot.ref': 'sha256:base' });
  assert.equal(await client.usage('ns/2/sha256:base'), active);
  assert.is((await failure(client.mounts('ns/2/sha256:base'))).code, 'FAILED_PRECONDITION');
  assert.is((await failure(client.commit('ns/2/sha256:base', 'ns/1/view0'))).code, 'ALREADY_EXISTS');
  assert.is((await failure(client.commit('ns/2/other', 'ns/2/sha256:base'))).code, 'FAILED_PRECONDITION');
  // a committed layer of the store: committed file, the CLI sees it
  const layer = upper.split('/').slice(-2)[0]!;
  assert.ok(existsSync(join(home, layer, 'committed')));
  const ls = cli('ls', '--json');
  assert.is(ls.status, 0, ls.stderr);
  assert.ok((JSON.parse(ls.stdout) as { id: string }[]).some((r) => r.id === layer));
});

test('Prepare on a committed parent: overlay with the store\'s short links, upper and work; it mounts and writes', async () => {
  const m = await client.prepare('ns/3/ctr', 'ns/2/sha256:base');
  assert.is(m.length, 1);
  assert.is(m[0]!.type, 'overlay');
  const lowerdir = optionOf(m[0]!.options, 'lowerdir')!;
  assert.match(lowerdir, new RegExp(`^${home}/l/[A-Z2-7]{26}$`));
  const upper = optionOf(m[0]!.options, 'upperdir')!;
  assert.ok(upper.startsWith(home + '/') && upper.endsWith('/diff'));
  assert.ok(optionOf(m[0]!.options, 'workdir')!.endsWith('/work'));
  assert.ok(m[0]!.options.includes('index=off'));
  const target = join(dir, 'mnt');
  mkdirSync(target, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', m[0]!.options.join(','), target]);
  try {
    assert.is(readFileSync(join(target, 'hello'), 'utf8'), 'hello\n');
    writeFileSync(join(target, 'new'), 'x');
    rmSync(join(target, 'hello'));
  } finally {
    execFileSync('umount', [target]);
  }
  assert.ok(existsSync(join(upper, 'new')));
  // the container's changes, as `overlay2 changes` (and docker diff) lists them
  const layer = upper.split('/').slice(-2)[0]!;
  const changes = cli('changes', layer);
  assert.is(changes.status, 0, changes.stderr);
  assert.equal(changes.stdout.trim().split('\n').sort(), ['A /new', 'D /hello']);
  // its usage counts the whiteout the kernel made for /hello
  const u = await client.usage('ns/3/ctr');
  assert.is(u.inodes, Number(execFileSync('du', ['-s', '--inodes', upper], { encoding: 'utf8' }).split('\t')[0]));
});

test('View: of a one-layer parent a ro bind of its upper dir; of a deeper one a ro overlay', async () => {
  const v1 = await client.view('ns/4/v1', 'ns/2/sha256:base');
  assert.is(v1[0]!.type, 'bind');
  assert.equal(v1[0]!.options, ['ro', 'rbind']);
  assert.ok(existsSync(join(v1[0]!.source, 'hello')));
  await client.prepare('ns/4/l2', 'ns/2/sha256:base');
  await client.commit('ns/5/l2', 'ns/4/l2');
  const v2 = await client.view('ns/4/v2', 'ns/5/l2');
  assert.is(v2[0]!.type, 'overlay');
  assert.is(optionOf(v2[0]!.options, 'upperdir'), undefined);
  assert.is(optionOf(v2[0]!.options, 'lowerdir')!.split(':').length, 2);
});

test('Remove: refused while children stand (FAILED_PRECONDITION), then the layer and its link are gone', async () => {
  const e = await failure(client.remove('ns/2/sha256:base'));
  assert.is(e.code, 'FAILED_PRECONDITION');
  const before = layerDirs().length;
  const linksBefore = readdirSync(join(home, 'l')).length;
  await client.remove('ns/4/v2');
  assert.is(layerDirs().length, before - 1);
  assert.is(readdirSync(join(home, 'l')).length, linksBefore - 1);
  assert.is((await failure(client.stat('ns/4/v2'))).code, 'NOT_FOUND');
});

test('Remove that fails after its layer went out of sight: the error is returned, the snapshot not listed again', async () => {
  const [m] = await client.prepare('ns/9/stuck');
  const inside = join(m!.source, 'sub');
  mkdirSync(inside);
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', inside]); // removal never crosses into a mount: it fails there
  try {
    const e = await failure(client.remove('ns/9/stuck'));
    assert.not.equal(e.code, 'OK');
    assert.is((await failure(client.stat('ns/9/stuck'))).code, 'NOT_FOUND', 'not put back pointing at a layer that is gone');
    assert.not.ok((await client.list()).infos.some((i) => i.name === 'ns/9/stuck'));
  } finally {
    const left = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
      .filter((t) => t.startsWith(join(home, '.partial')) && t.endsWith('/sub'));
    for (const t of left) execFileSync('umount', [t]);
    if (left.length === 0) execFileSync('umount', [inside]);
  }
  assert.is((await failure(client.remove('ns/9/stuck'))).code, 'NOT_FOUND');
});

test('Update: labels replaced, one label set or dropped by its path; other fields refused', async () => {
  await client.update('ns/5/l2', { x: '1', y: '2' }, ['labels']);
  assert.equal((await client.stat('ns/5/l2')).labels, { x: '1', y: '2' });
  const after = await client.update('ns/5/l2', { x: '9' }, ['labels.x', 'labels.y']);
  assert.equal(after.labels, { x: '9' });
  assert.equal((await client.stat('ns/5/l2')).labels, { x: '9' });
  assert.is((await failure(client.update('ns/5/l2', {}, ['name']))).code, 'INVALID_ARGUMENT');
  assert.is((await failure(client.update('ns/9/none', {}, ['labels']))).code, 'NOT_FOUND');
});

test('List: every snapshot; filters as containerd writes them, OR across filters', async () => {
  const all = await client.list();
  const names = all.infos.map((i) => i.name).sort();
  assert.equal(names, ['ns/1/view0', 'ns/2/sha256:base', 'ns/3/ctr', 'ns/4/v1', 'ns/5/l2']);
  const ref = await client.list(['labels."containerd.io/snapshot.ref"==sha256:base,parent==""']);
  assert.equal(ref.infos.map((i) => i.name), ['ns/2/sha256:base']);
  const kinds = await client.list(['kind==committed', 'kind==view']);
  assert.equal(kinds.infos.map((i) => i.name).sort(), ['ns/1/view0', 'ns/2/sha256:base', 'ns/4/v1', 'ns/5/l2']);
  assert.equal((await client.list(['parent==ns/2/sha256:base,kind==active'])).infos.map((i) => i.name), ['ns/3/ctr']);
  assert.equal((await client.list(['name~=^ns/4/'])).infos.map((i) => i.name), ['ns/4/v1']);
  assert.is((await failure(client.list(['labels."unterminated']))).code, 'INVALID_ARGUMENT');
});

test('List streams in messages of at most 100, as containerd\'s own service does', async () => {
  for (let i = 0; i < 150; i++) await client.view(`ns/6/many-${i}`);
  const { infos, messages } = await client.list(['name~=^ns/6/']);
  assert.is(infos.length, 150);
  assert.is(messages, 2);
  for (let i = 0; i < 150; i++) await client.remove(`ns/6/many-${i}`);
});

test('SIGTERM: exit 0, the socket removed; started again it serves the same snapshots', async () => {
  const before = (await client.list()).infos.map((i) => JSON.stringify(i)).sort();
  client.close();
  const code = await running.stop('SIGTERM');
  assert.is(code, 0);
  assert.not.ok(existsSync(socket));
  running = await startSnapshotter(home, socket);
  client = new SnapshotsClient(socket);
  assert.equal((await client.list()).infos.map((i) => JSON.stringify(i)).sort(), before);
  // and it still works: a container's mounts
  assert.is((await client.mounts('ns/3/ctr'))[0]!.type, 'overlay');
});

test('kill -9: the stale socket is replaced at the next start, every snapshot served', async () => {
  const before = (await client.list()).infos.length;
  await restart('SIGKILL');
  assert.is((await client.list()).infos.length, before);
});

test(`kill -9 in the middle of Prepare/Commit/Remove, ${TRIALS} times: every snapshot after the restart is whole, no layer without its record`, async () => {
  for (let trial = 0; trial < TRIALS; trial++) {
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      const key = `ns/k/${trial}-${i}`;
      calls.push(client.prepare(key, 'ns/2/sha256:base')
        .then(() => (i % 3 === 0 ? client.commit(`ns/c/${trial}-${i}`, key) : i % 3 === 1 ? client.remove(key) : undefined))
        .catch(() => undefined));
    }
    await new Promise((r) => setTimeout(r, 5 + trial * 7));
    client.close();
    await running.stop('SIGKILL');
    await Promise.allSettled(calls);
    running = await startSnapshotter(home, socket);
    client = new SnapshotsClient(socket);
  }
  const listed = (await client.list()).infos;
  for (const info of listed) {
    if (info.kind === 'ACTIVE') assert.ok((await client.mounts(info.name)).length === 1, info.name);
    assert.is((await client.stat(info.name)).name, info.name);
  }
  // every layer dir holds a record, or is not the snapshotter's (none of those here)
  for (const layer of layerDirs()) assert.ok(existsSync(join(home, layer, 'ovl2-snapshot.json')), layer);
  assert.is(layerDirs().length, listed.length);
  // clean up what the trials made
  for (const info of listed) if (/^ns\/[kc]\//.test(info.name)) await client.remove(info.name);
});

test('a second snapshotter on a live socket is refused in one line', async () => {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, 'snapshotter', '--socket', socket], { encoding: 'utf8', timeout: 20_000 });
  assert.is(r.status, 1);
  assert.match(r.stderr, /another process is serving/);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('Cleanup leaves alone layers that are not snapshots (the CLI\'s, the plugin\'s)', async () => {
  // the store's CLI on the same home while the snapshotter serves it
  assert.is(cli('create', 'cli-layer').status, 0);
  await client.cleanup();
  assert.is(cli('exists', 'cli-layer').status, 0);
  assert.is(cli('remove', 'cli-layer').status, 0);
});

test('--log-level debug: a line per call; a bad level is a usage error', async () => {
  client.close();
  await running.stop();
  running = await startSnapshotter(home, socket, ['--log-level', 'debug']);
  client = new SnapshotsClient(socket);
  await client.stat('ns/5/l2');
  await failure(client.stat('ns/9/missing'));
  await new Promise((r) => setTimeout(r, 100));
  assert.match(running.stderr(), /Stat key=ns\/5\/l2: ok/);
  assert.match(running.stderr(), /Stat key=ns\/9\/missing: NOT_FOUND/);
  const bad = spawnSync(process.execPath, [CLI_BIN, '--home', home, 'snapshotter', '--socket', join(dir, 'x.sock'), '--log-level', 'loud'], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--log-level/);
});

test.run();
