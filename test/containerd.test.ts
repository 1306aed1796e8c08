// End to end with a real, unmodified containerd 1.6 (Debian's) and runc: one private containerd has both
// its built-in overlayfs snapshotter and ours as the proxy plugin `ovl2` (`overlay2 snapshotter`, the CLI
// as a user runs it), and the same steps run on both, each in its own namespace — import, run, change,
// usage, diff — whose outputs must agree: the tree a container sees (names, types, modes, owners, sizes,
// link counts, link targets, devices, contents), `ctr snapshots usage`, and the walking differ's tar entry
// by entry (not mtimes). Then what only ours has to survive: a restart, a kill -9 in the middle of an
// import, containerd's garbage collection, and the CLI reading the layers containerd made.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { testIf, canMountOverlay, whyNotMount, scratchRoot, mountsBelow } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { tarEntries, type Entry } from './support/tar-entries.js';
import { buildTestImages, APPLETS, MANY_FILES_COUNT, type TestImages } from './support/test-image.js';
import { whyNoContainerd, startContainerd, uniqueName, ctrTable, run, sleep, type PrivateContainerd } from './support/containerd.js';
import { startSnapshotter, type RunningSnapshotter } from './support/snapshots-client.js';
import { whyNoDocker } from '../bench/lib/dockerd.js';

const why = whyNotMount || whyNoContainerd() || whyNoDocker();
const test = testIf(canMountOverlay && why === '', 'containerd end-to-end tests', why, uvuTest);

const OURS = 'ovl2';
const DEBUG = ['--log-level', 'debug'];
const BUILTIN = 'overlayfs';
/** The tree a container sees: one line per path on the root filesystem, then each regular file's md5. */
const LIST_TREE = "find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -exec stat -c '%n|%F|%a|%u:%g|%s|%h|%N|%t:%T' {} + | sort; " +
  'find / -xdev -type f -exec md5sum {} + | sort';
/** A container's changes on the `changed` image: new, appended, deleted, chmod'ed, linked, a dir deleted and recreated. */
const CONTAINER_CHANGES = [
  'set -e',
  'echo new > /d/new',
  'echo again >> /d/sub/g',
  'rm /d/n1',
  'rm -rf /d/renamed',
  'chmod 600 /etc/motd',
  'chmod 755 /d/a',
  'ln -s /d/new /d/newlink',
  'ln /d/a /d/a3',
  'mkdir -p /d/x/y && echo z > /d/x/y/z',
  'rm -rf /d/emptydir && mkdir /d/emptydir && echo in > /d/emptydir/f',
  'rm /bin/tool',
].join('\n');

let scratch: ReturnType<typeof scratchRoot>;
let images: TestImages;
let snap: RunningSnapshotter;
let ctd: PrivateContainerd;
let home = '';
let socket = '';
/** Image references as ctr names them after `ctr images import` of a `docker save` archive. */
let changedRef = '';
let bigRef = '';
const ns = { [OURS]: '', [BUILTIN]: '' } as Record<string, string>;
const cid = { [OURS]: '', [BUILTIN]: '' } as Record<string, string>;

test.before(async () => {
  try {
    await setUp();
  } catch (e) {
    // uvu counts a failed before hook as every test failing but prints nothing of why.
    console.error('!! containerd end-to-end set-up failed:', e);
    throw e;
  }
});

async function setUp(): Promise<void> {
  scratch = scratchRoot('ovl2-ctd-');
  images = await buildTestImages(join(scratch.root, 'img'), [...APPLETS, 'md5sum', 'wc', 'sleep', 'test']);
  changedRef = `docker.io/library/${images.changed}`;
  bigRef = `docker.io/library/${images.big}`;
  home = join(scratch.root, 'home');
  socket = join(scratch.root, 'ovl2.sock');
  snap = await startSnapshotter(home, socket, DEBUG);
  ctd = await startContainerd(join(scratch.root, 'ctd'), { snapshotters: { [OURS]: socket } });
  const run = uniqueName('e2e');
  for (const s of [OURS, BUILTIN]) {
    ns[s] = `${run}-${s}`;
    cid[s] = `${run}-${s}-c1`;
  }
}

test.after(async () => {
  await ctd?.stop();
  if (snap) await Promise.race([snap.stop(), sleep(15_000).then(() => snap.stop('SIGKILL'))]);
  scratch?.remove();
});

/** `ctr … --snapshotter S …` in S's namespace: args may hold '{S}' for the snapshotter name. */
function on(s: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}) {
  return ctd.ctr(args.map((a) => a.replaceAll('{S}', s)), { ...opts, namespace: ns[s] });
}

/** The same ctr command on both snapshotters (in parallel); returns [ours, built-in] stdout. */
async function both(args: string[]): Promise<[string, string]> {
  const [a, b] = await Promise.all([on(OURS, args), on(BUILTIN, args)]);
  return [a.out, b.out];
}

/** The store's layer dirs: everything in HOME but `l` and the driver's dot-named bookkeeping. */
function layersInHome(): string[] {
  return readdirSync(home).filter((n) => n !== 'l' && !n.startsWith('.') && statSync(join(home, n)).isDirectory()).sort();
}

/**
 * Runs containerd's GC now and waits for it (images rm --sync of a spare tag): containerd removes a
 * snapshot from ours only in a GC after its own record went (ctr run --rm, containers rm), not at once.
 */
async function gcNow(): Promise<void> {
  await on(OURS, ['images', 'tag', '--force', changedRef, `${changedRef}-spare`]);
  await on(OURS, ['images', 'rm', '--sync', `${changedRef}-spare`]);
}

/** containerd's snapshots on ours in one namespace: key → kind. */
async function snapshotsOf(namespace: string): Promise<Record<string, string>> {
  const out = (await ctd.ctr(['snapshots', '--snapshotter', OURS, 'ls'], { namespace })).out;
  return Object.fromEntries(ctrTable(out).map((r) => [r.KEY, r.KIND]));
}

/** Retries `fn` for up to `ms` while it throws: containerd's gRPC client reconnects to a restarted proxy with a backoff (at most 3 s in 1.6). */
async function eventually<T>(fn: () => Promise<T>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > until) throw e;
      await sleep(250);
    }
  }
}

/** What the snapshotters before the current one (restarted, killed) wrote to stderr. */
let earlierStderr = '';

/** Starts ours again on the same HOME and socket, after a stop or kill of the last one. */
async function restartSnapshotter(): Promise<RunningSnapshotter> {
  earlierStderr += snap.stderr();
  return startSnapshotter(home, socket, DEBUG);
}

/** Why a comparison failed, with what our snapshotter logged last. */
function logTail(): string {
  return `\n--- overlay2 snapshotter stderr (tail) ---\n${snap.stderr().slice(-4000)}`;
}

test('ctr images import on ovl2 and overlayfs: a container lists the same tree on both', async () => {
  await both(['images', 'import', '--snapshotter', '{S}', images.archive]);
  const listed = (await on(OURS, ['images', 'ls', '-q'])).out.split('\n').filter(Boolean).sort();
  assert.equal(listed, [bigRef, changedRef].sort());
  assert.ok(layersInHome().length >= 3, `HOME holds ${layersInHome().length} layers after the import${logTail()}`);
  let n = 0;
  for (const ref of [changedRef, bigRef]) {
    const id = `${cid[OURS]}-ls${n++}`;
    const [a, b] = await both(['run', '--rm', '--snapshotter', '{S}', ref, id, 'sh', '-c', LIST_TREE]);
    if (ref === bigRef) assert.is(a.split('\n').filter((l) => l.startsWith('/many/') && l.includes('|regular file|')).length, MANY_FILES_COUNT);
    else {
      assert.match(a, /^\/d\/lnk\|symbolic link\|777\|5:6\|.*-> 'sub\/f'/m);
      assert.not.match(a, /^\/d\/keep\|/m);
      assert.not.match(a, /^\/d\/sub\/f\|/m);
      assert.match(a, /^\/bin\/tool\|regular file\|4711\|/m);
      assert.match(a, /^\/d\/n1\|regular file\|644\|0:0\|4\|2\|/m);
    }
    assert.is(a, b, `the tree of ${ref} differs between ${OURS} and ${BUILTIN}${logTail()}`);
  }
  // The container's root really was ours: an overlay whose dirs are in HOME.
  const mi = (await on(OURS, ['run', '--rm', '--snapshotter', OURS, changedRef, `${cid[OURS]}-mi`, 'sh', '-c', 'cat /proc/self/mountinfo'])).out;
  const rootLine = mi.split('\n').find((l) => l.split(' ')[4] === '/') ?? '';
  assert.match(rootLine, / - overlay /, mi);
  assert.ok(rootLine.includes(home), `the container's root is not in ${home}: ${rootLine}`);
});

test('a container that writes, deletes and chmods: ctr snapshots usage and diff equal overlayfs', async () => {
  await Promise.all([OURS, BUILTIN].map((s) =>
    on(s, ['run', '--snapshotter', s, changedRef, cid[s], 'sh', '-c', CONTAINER_CHANGES])));
  const usage = await Promise.all([OURS, BUILTIN].map(async (s) => {
    const rows = ctrTable((await on(s, ['snapshots', '--snapshotter', s, 'usage', '-b', cid[s]])).out);
    assert.is(rows.length, 1);
    return { size: rows[0].SIZE, inodes: rows[0].INODES };
  }));
  assert.equal(usage[0], usage[1], `usage: ${OURS} ${JSON.stringify(usage[0])}, ${BUILTIN} ${JSON.stringify(usage[1])}${logTail()}`);
  const diffs = await Promise.all([OURS, BUILTIN].map(async (s) => {
    const tar = await ctd.ctr(['snapshots', '--snapshotter', s, 'diff', '--media-type', 'application/vnd.oci.image.layer.v1.tar', cid[s]],
      { namespace: ns[s] });
    return tarEntries(Readable.from([tar.stdout]));
  }));
  const byName = new Map(diffs[0].map((e) => [e.name, e]));
  assert.is(byName.get('d/.wh.n1')?.type, 'file');
  assert.is(byName.get('d/.wh.renamed')?.type, 'file');
  assert.is(byName.get('d/newlink')?.linkname, '/d/new');
  assert.is(byName.get('etc/motd')?.mode, 0o600);
  assert.equal(names(diffs[0]), names(diffs[1]), `diff entry names${logTail()}`);
  assert.equal(diffs[0], diffs[1], `diff entries${logTail()}`);
});

function names(entries: Entry[]): string[] {
  return entries.map((e) => `${e.type} ${e.name}`);
}

/** ctr's table for snapshotter S, its container ids written as CID (committed snapshots are chainIDs on both). */
async function table(s: string, args: string[]): Promise<Record<string, string>[]> {
  const out = (await on(s, ['snapshots', '--snapshotter', s, ...args])).out;
  return ctrTable(out).map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v.replaceAll(cid[s], 'CID')])))
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

test('every snapshot: ctr snapshots ls and usage equal overlayfs; the walking differ on a committed layer too', async () => {
  const [lsA, lsB] = await Promise.all([table(OURS, ['ls']), table(BUILTIN, ['ls'])]);
  assert.is(lsA.length, 4, JSON.stringify(lsA));
  assert.equal(lsA, lsB);
  const [duA, duB] = await Promise.all([table(OURS, ['usage', '-b']), table(BUILTIN, ['usage', '-b'])]);
  assert.equal(duA, duB, `usage of every snapshot${logTail()}`);
  // The changed image's top layer (the container's parent) against its own parent.
  const top = lsA.find((r) => r.KEY === 'CID')!.PARENT;
  const diffs = await Promise.all([OURS, BUILTIN].map(async (s) => {
    const tar = await on(s, ['snapshots', '--snapshotter', s, 'diff', '--media-type', 'application/vnd.oci.image.layer.v1.tar', top]);
    return tarEntries(Readable.from([tar.stdout]));
  }));
  // The walking differ compares two trees: the opaque dir of the image's layer comes out as a whiteout
  // of the one name it hid (d/sub/f), as on overlayfs.
  assert.ok(diffs[0].some((e) => e.name === 'd/sub/.wh.f'), names(diffs[0]).join('\n'));
  assert.ok(diffs[0].some((e) => e.name === 'd/.wh.keep'), names(diffs[0]).join('\n'));
  assert.equal(diffs[0], diffs[1], `diff of ${top}${logTail()}`);
});

test('eight containers at once on ovl2: each sees the image and its own writes; no snapshot left after --rm', async () => {
  const before = await snapshotsOf(ns[OURS]);
  const outs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    on(OURS, ['run', '--rm', '--snapshotter', OURS, changedRef, `${cid[OURS]}-p${i}`, 'sh', '-c',
      `echo ${i} > /d/mine && rm /d/a && cat /d/mine /d/sub/g && ls /d | wc -l`])));
  const lsD = outs[0].out.split('\n')[2];
  outs.forEach((o, i) => assert.is(o.out, `${i}\nnew\n${lsD}\n`));
  assert.equal(await snapshotsOf(ns[OURS]), before);
});

test('ctr run --read-only (a View of the image): the same tree and the same refusal to write as overlayfs', async () => {
  const [a, b] = await both(['run', '--rm', '--read-only', '--snapshotter', '{S}', changedRef, `${cid[OURS]}-ro`, 'sh', '-c',
    'cat /d/sub/g /d/a-hard; touch /d/t 2>/dev/null && echo wrote || echo read-only; ' + LIST_TREE]);
  assert.match(a, /^new\nhardlinked\nread-only\n/);
  assert.is(a, b);
});

test('three namespaces import an image at once on ovl2: each runs, each namespace holds its own two layers, all go with GC', async () => {
  const spaces = [0, 1, 2].map((i) => `${ns[OURS]}-par${i}`);
  await gcNow();
  const before = layersInHome().length;
  try {
    await Promise.all(spaces.map((n) => ctd.ctr(['images', 'import', '--snapshotter', OURS, images.changedArchive], { namespace: n })));
    for (const n of spaces) assert.equal(Object.values(await snapshotsOf(n)), ['Committed', 'Committed'], n);
    assert.is(layersInHome().length, before + 6);
    const outs = await Promise.all(spaces.map((n, i) => ctd.ctr(['run', '--rm', '--snapshotter', OURS, changedRef, `${cid[OURS]}-par${i}`,
      'cat', '/d/sub/g', '/d/renamed/y'], { namespace: n })));
    for (const o of outs) assert.is(o.out, 'new\ny\n');
  } finally {
    await Promise.all(spaces.map((n) => ctd.ctr(['images', 'rm', '--sync', changedRef], { namespace: n, allowFail: true })));
  }
  for (const n of spaces) assert.equal(await snapshotsOf(n), {}, n);
  assert.is(layersInHome().length, before, logTail());
});

test('overlay2 ls and changes read the layers containerd made (they are ordinary layers of the store)', async () => {
  const ls = JSON.parse((await run(process.execPath, [CLI_BIN, '--home', home, 'ls', '--json'])).out) as { id: string; parent: string }[];
  assert.equal(ls.map((l) => l.id).sort(), layersInHome());
  // The container's snapshot: its upperdir (from the mounts ours returns) names its layer.
  const m = (await on(OURS, ['snapshots', '--snapshotter', OURS, 'mounts', '/mnt-unused', cid[OURS]])).out;
  const upper = /upperdir=([^,\s]+)/.exec(m)?.[1] ?? '';
  assert.ok(upper.startsWith(home + '/') && upper.endsWith('/diff'), `mounts of ${cid[OURS]}: ${m}`);
  const layer = upper.slice(home.length + 1, -'/diff'.length);
  assert.ok(ls.some((l) => l.id === layer), `${layer} not in overlay2 ls: ${JSON.stringify(ls)}`);
  const changes = JSON.parse((await run(process.execPath, [CLI_BIN, '--home', home, 'changes', layer, '--json'])).out) as { path: string; kind: number | string }[];
  const paths = changes.map((c) => c.path);
  for (const p of ['/d/new', '/d/n1', '/d/renamed', '/etc/motd', '/d/x/y/z', '/bin/tool']) assert.ok(paths.includes(p), `${p} not in changes: ${JSON.stringify(changes)}`);
});

test('restart: SIGTERM the snapshotter (exit 0, socket gone), start it again: same snapshots, containers still start', async () => {
  // A container keeps running across the restart (containerd holds its mounts, not us).
  const live = `${cid[OURS]}-live`;
  await on(OURS, ['run', '-d', '--snapshotter', OURS, changedRef, live, 'sleep', '600']);
  const before = (await on(OURS, ['snapshots', '--snapshotter', OURS, 'ls'])).out;
  const code = await snap.stop();
  assert.equal([code, snap.child.signalCode], [0, null], snap.stderr().slice(-3000));
  assert.equal(mountsBelow(home), []);
  assert.not.ok(statSafe(socket), 'the socket is still there');
  snap = await restartSnapshotter();
  const after = await eventually(async () => (await on(OURS, ['snapshots', '--snapshotter', OURS, 'ls'])).out);
  assert.is(after, before);
  const out = await eventually(async () => (await on(OURS, ['run', '--rm', '--snapshotter', OURS, changedRef, `${cid[OURS]}-r`, 'cat', '/d/sub/g', '/d/n2'])).out);
  assert.is(out, 'new\ntwo\n');
  const exec = await on(OURS, ['tasks', 'exec', '--exec-id', 'e1', live, 'sh', '-c', 'echo w > /d/w && cat /d/w /d/sub/g']);
  assert.is(exec.out, 'w\nnew\n');
  const usage = ctrTable((await on(OURS, ['snapshots', '--snapshotter', OURS, 'usage', '-b', live])).out);
  assert.ok(Number(usage[0]?.SIZE) > 0, JSON.stringify(usage));
  await on(OURS, ['tasks', 'kill', '-s', 'SIGKILL', live]);
  await eventually(() => on(OURS, ['tasks', 'rm', live]), 10_000);
  await on(OURS, ['containers', 'rm', live]);
  assert.not.ok(live in (await snapshotsOf(ns[OURS])));
  assert.equal((await on(OURS, ['snapshots', '--snapshotter', OURS, 'ls'])).out, before.split('\n').filter((l) => !l.startsWith(live)).join('\n'));
});

function statSafe(p: string): boolean {
  try { statSync(p); return true; } catch { return false; }
}

/** Where in containerd's unpack of the big image a kill -9 lands: a new layer of HOME holding … */
const KILL_POINTS: [string, string][] = [
  ['while containerd extracts the 5,000-file layer (its upper dir holds /many)', join('diff', 'many')],
  // The archive lists the layer's files in lexical order: d9/f99 is the last, Commit is next.
  ['as containerd finishes extracting it (Commit next)', join('diff', 'many', 'd9', 'f99')],
];

for (const [i, [when, marker]] of KILL_POINTS.entries()) {
  test(`kill -9 of the snapshotter ${when}: restart, import again, nothing half left after GC`, async () => {
    // A fresh namespace: containerd unpacks every layer again (snapshots are per namespace).
    const killNs = `${ns[OURS]}-kill${i}`;
    const known = new Set(layersInHome());
    const importing = ctd.ctr(['images', 'import', '--snapshotter', OURS, images.archive], { namespace: killNs, allowFail: true });
    let killedAt = '';
    const until = Date.now() + 60_000;
    while (!killedAt && Date.now() < until) {
      for (const l of layersInHome()) {
        if (!known.has(l) && statSafe(join(home, l, marker))) { killedAt = l; break; }
      }
      if (!killedAt) await sleep(1);
    }
    await snap.stop('SIGKILL');
    const first = await importing;
    assert.ok(killedAt, `no new layer with ${marker} appeared in 60 s (import: ${first.code} ${first.err})`);
    assert.is(snap.child.signalCode, 'SIGKILL');
    // The first kill point always cuts the import (the Commit cannot reach us); the second may come
    // just after the Commit: then the import went through, which is fine too.
    if (i === 0) assert.is.not(first.code, 0, `the import finished before the kill: ${first.out}`);
    snap = await restartSnapshotter();
    await eventually(() => ctd.ctr(['images', 'import', '--snapshotter', OURS, images.archive], { namespace: killNs }), 30_000);
    const out = (await ctd.ctr(['run', '--rm', '--snapshotter', OURS, bigRef, `${cid[OURS]}-k${i}`, 'sh', '-c', 'find /many -type f | wc -l'],
      { namespace: killNs })).out;
    assert.is(out.trim(), String(MANY_FILES_COUNT));
    // containerd's GC (run by images rm --sync, here of a spare tag) removes the killed import's active
    // snapshot: what is left are the three committed layers.
    await ctd.ctr(['images', 'tag', bigRef, `${bigRef}-spare`], { namespace: killNs });
    await ctd.ctr(['images', 'rm', '--sync', `${bigRef}-spare`], { namespace: killNs });
    const kinds = await snapshotsOf(killNs);
    assert.equal(Object.values(kinds), ['Committed', 'Committed', 'Committed'], `${JSON.stringify(kinds)}${logTail()}`);
    // The images go, GC runs: the namespace holds no snapshot, and HOME holds exactly the layers of the
    // other namespace's snapshots — no half layer of the killed import.
    await ctd.ctr(['images', 'rm', '--sync', changedRef, bigRef], { namespace: killNs });
    assert.equal(await snapshotsOf(killNs), {}, logTail());
    const remaining = await snapshotsOf(ns[OURS]);
    assert.is(layersInHome().length, Object.keys(remaining).length,
      `HOME: ${layersInHome().join(' ')}; containerd's snapshots: ${JSON.stringify(remaining)}${logTail()}`);
    assert.equal(mountsBelow(home), []);
  });
}

test('images rm while the snapshotter is down: after its restart, containerd\'s next GC of ovl2 removes the orphaned layers', async () => {
  const downNs = `${ns[OURS]}-down`;
  await ctd.ctr(['images', 'import', '--snapshotter', OURS, images.changedArchive], { namespace: downNs });
  const code = await snap.stop();
  assert.is(code, 0);
  // containerd drops the images and its records of the snapshots; removing them from ovl2 fails for now.
  await ctd.ctr(['images', 'rm', '--sync', changedRef], { namespace: downNs });
  snap = await restartSnapshotter();
  // containerd cleans a snapshotter in a GC that removed one of its snapshots: remove a scratch one.
  await eventually(() => on(OURS, ['snapshots', '--snapshotter', OURS, 'prepare', `${cid[OURS]}-scratch`]));
  await on(OURS, ['snapshots', '--snapshotter', OURS, 'rm', `${cid[OURS]}-scratch`]);
  await gcNow();
  assert.equal(await snapshotsOf(downNs), {});
  const remaining = await snapshotsOf(ns[OURS]);
  assert.is(layersInHome().length, Object.keys(remaining).length,
    `HOME: ${layersInHome().join(' ')}; containerd's snapshots: ${JSON.stringify(remaining)}${logTail()}`);
});

test('containerd restarts on the same root: ovl2 lists the same snapshots as before, a container starts', async () => {
  const before = await Promise.all([table(OURS, ['ls']), table(BUILTIN, ['ls'])]);
  await ctd.stop();
  ctd = await startContainerd(ctd.dir, { snapshotters: { [OURS]: socket } });
  const after = await Promise.all([table(OURS, ['ls']), table(BUILTIN, ['ls'])]);
  assert.equal(after, before);
  const out = (await on(OURS, ['run', '--rm', '--snapshotter', OURS, changedRef, `${cid[OURS]}-cr`, 'cat', '/d/sub/g'])).out;
  assert.is(out, 'new\n');
});

test('containers rm, images rm, GC: HOME holds no layer and nothing is mounted', async () => {
  await on(OURS, ['containers', 'rm', cid[OURS]]);
  await on(OURS, ['images', 'rm', '--sync', changedRef, bigRef]);
  assert.equal(await snapshotsOf(ns[OURS]), {});
  assert.equal(layersInHome(), [], logTail());
  assert.equal(readdirSync(join(home, 'l')), []);
  for (const n of readdirSync(home).filter((x) => x.startsWith('.') && statSync(join(home, x)).isDirectory())) {
    assert.equal(readdirSync(join(home, n)).filter((x) => x !== 'lock' && x !== '.users' && x !== '.stamp'), [], n);
  }
  assert.equal(mountsBelow(home), []);
});

test('SIGTERM: the snapshotter exits 0, removes its socket, leaves nothing mounted', async () => {
  await ctd.stop();
  const code = await snap.stop();
  assert.equal([code, snap.child.signalCode], [0, null], snap.stderr().slice(-3000));
  assert.not.ok(statSafe(socket));
  assert.equal(mountsBelow(scratch.root), []);
  // No call of the whole run failed but in the ways containerd's own flow may meet: NOT_FOUND (Stat of
  // a layer not unpacked yet), ALREADY_EXISTS (a Prepare that lost a race). Call lines: "METHOD about: CODE: why (N ms)".
  const failed = (earlierStderr + snap.stderr()).split('\n')
    .filter((l) => /^overlay2 snapshotter: [A-Z][A-Za-z]+ .*: [A-Z_]+: .*\([\d.]+ ms\)$/.test(l) && !/: (NOT_FOUND|ALREADY_EXISTS): /.test(l));
  assert.equal(failed, []);
});

test.run();
