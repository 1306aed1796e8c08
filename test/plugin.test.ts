// The graphdriver plugin's HTTP handlers over a real unix socket, with dockerd's framing: every call,
// exact response fields, bad requests, concurrent and aborted streams, the socket's lifecycle, and
// SIGTERM on the CLI process.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { once } from 'node:events';
import { servePlugin, homeDirName, type PluginHandle } from '../src/plugin/index.js';
import { settingsOptions } from '../src/plugin/managed.js';
import { mountTest, scratchRoot, isMounted, rejectsWithCode } from './support/env.js';
import { CLI_BIN } from './support/cli.js';
import { openCall, pluginCall } from './support/plugin-client.js';
import { dir, file, tarOf, hardlink, symlink } from './apply-tar.js';

const test = mountTest(uvuTest);
let scratch: ReturnType<typeof scratchRoot>;
let plugin: PluginHandle;
let socket = '';
let home = '';

test.before(async () => {
  scratch = scratchRoot('ovl2-plugin-');
  socket = join(scratch.root, 'p.sock');
  home = join(scratch.root, 'home');
  plugin = await servePlugin({ name: 'overlay2-test', socket, graceMs: 200 });
});
test.after(async () => {
  await plugin?.close();
  scratch?.remove();
});

const call = (path: string, body?: object | string | Buffer) => pluginCall(socket, path, body);

function layerEntries(id: string): string[] {
  return readdirSync(join(home, id)).sort();
}

test('a call before Init is refused with Err, Activate and Capabilities answer', async () => {
  const early = await call('/GraphDriver.Create', { ID: 'x' });
  assert.is(early.status, 409);
  assert.match(String(early.json.Err), /Init has not been called/);
  const act = await call('/Plugin.Activate');
  assert.is(act.status, 200);
  assert.is(act.text.trim(), '{"Implements":["GraphDriver"]}');
  const caps = await call('/GraphDriver.Capabilities', {});
  assert.is(caps.text.trim(), '{"Capabilities":{"ReproducesExactDiffs":false}}');
});

test('Init: Home and Opts as dockerd sends them; a bad option is an Err', async () => {
  const bad = await call('/GraphDriver.Init', { Home: home, Opts: ['overlay2.nonsense=1'], UIDMaps: null, GIDMaps: null });
  assert.is(bad.status, 400);
  assert.match(String(bad.json.Err), /nonsense/);
  const ok = await call('/GraphDriver.Init', { Home: home, Opts: [], UIDMaps: null, GIDMaps: null });
  assert.is(ok.status, 200, ok.text);
  assert.is(ok.text.trim(), '{}');
  assert.ok(existsSync(join(home, 'l')));
  assert.is(plugin.driver?.home, home);
});

test('bad requests: unknown path, GET, malformed JSON, wrong types, missing ID, invalid ids', async () => {
  const cases: [string, object | string | undefined, number, RegExp][] = [
    ['/GraphDriver.Nope', {}, 404, /not a GraphDriver plugin call/],
    ['/', undefined, 404, /not a GraphDriver plugin call/],
    ['/GraphDriver.Create', '{"ID": "x"', 400, /malformed JSON/],
    ['/GraphDriver.Create', '[1,2]', 400, /must be a JSON object/],
    ['/GraphDriver.Create', { ID: 7 }, 400, /ID must be a string/],
    ['/GraphDriver.Create', { ID: 'x', StorageOpt: { size: 1 } }, 400, /StorageOpt/],
    ['/GraphDriver.Create', {}, 400, /missing ID/],
    ['/GraphDriver.Get', { ID: '' }, 400, /missing ID/],
    ['/GraphDriver.Create', { ID: 'q,upperdir=/tmp' }, 400, /invalid layer id/],
    ['/GraphDriver.Create', { ID: '../escape' }, 400, /invalid layer id/],
    ['/GraphDriver.Create', { ID: 'ok1', Parent: 'a:b' }, 400, /invalid parent id/],
    ['/GraphDriver.Remove', { ID: 'l' }, 400, /link directory/],
    ['/GraphDriver.ApplyDiff', '', 400, /missing id/],
    ['/GraphDriver.ApplyDiff?id=..', tarOf(file('a', 'x')).toString('latin1'), 400, /invalid layer id/],
    ['/GraphDriver.Init', { Opts: [] }, 400, /missing Home/],
    ['/GraphDriver.Init', { Home: home, UIDMaps: [{ container_id: 0 }] }, 400, /UIDMaps/],
  ];
  for (const [path, body, status, err] of cases) {
    const r = await call(path, body);
    assert.is(r.status, status, `${path} ${JSON.stringify(body)}: ${r.text}`);
    assert.match(String(r.json.Err), err, `${path}: ${r.text}`);
    assert.not.match(String(r.json.Err), /\n/);
  }
  const { req, reply } = openCall(socket, '/GraphDriver.Status', 'GET');
  req.end();
  assert.is((await reply).status, 405);
  // The rejected calls created nothing, and the plugin still serves.
  assert.equal(readdirSync(home).filter((n) => !n.startsWith('.')).sort(), ['l'], 'no layer left (dot names are the driver\'s bookkeeping)');
  assert.is((await call('/GraphDriver.Status', {})).status, 200);
});

test('every call with exact field names: Create, Exists, Get, Put, GetMetadata, Status, ApplyDiff, Changes, DiffSize, Diff, Remove', async () => {
  assert.is((await call('/GraphDriver.Create', { ID: 'base' })).text.trim(), '{}');
  const layer = tarOf(dir('etc/'), file('etc/passwd', 'root:x:0:0\n'), file('bin', 'B'), hardlink('bin2', 'bin'));
  const applied = await call('/GraphDriver.ApplyDiff?id=base&parent=', layer);
  assert.is(applied.status, 200, applied.text);
  assert.equal(applied.json, { Size: 12 });
  assert.is((await call('/GraphDriver.Exists', { ID: 'base' })).text.trim(), '{"Exists":true}');
  assert.is((await call('/GraphDriver.Exists', { ID: 'nope' })).text.trim(), '{"Exists":false}');

  const rw = await call('/GraphDriver.CreateReadWrite', { ID: 'ctr', Parent: 'base', MountLabel: '', StorageOpt: {} });
  assert.is(rw.status, 200, rw.text);
  const got = await call('/GraphDriver.Get', { ID: 'ctr', MountLabel: '' });
  assert.equal(Object.keys(got.json), ['Dir']);
  const root = String(got.json.Dir);
  assert.is(root, join(home, 'ctr', 'merged'));
  assert.ok(isMounted(root));
  assert.is(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), 'root:x:0:0\n');
  writeFileSync(join(root, 'etc', 'hostname'), 'box\n');

  const meta = await call('/GraphDriver.GetMetadata', { ID: 'ctr' });
  assert.equal(meta.json, { Metadata: {
    WorkDir: join(home, 'ctr', 'work'), MergedDir: root, UpperDir: join(home, 'ctr', 'diff'), LowerDir: join(home, 'base', 'diff'),
  } });
  const status = await call('/GraphDriver.Status', {});
  const pairs = status.json.Status as [string, string][];
  assert.ok(Array.isArray(pairs) && pairs.every((p) => p.length === 2));
  assert.equal(pairs[0][0], 'Backing Filesystem');
  assert.ok(pairs.some(([k]) => k === 'Native Overlay Diff'));

  const changes = await call('/GraphDriver.Changes', { ID: 'ctr', Parent: 'base' });
  assert.equal(changes.json, { Changes: [{ Path: '/etc', Kind: 0 }, { Path: '/etc/hostname', Kind: 1 }] });
  assert.equal((await call('/GraphDriver.DiffSize', { ID: 'ctr', Parent: 'base' })).json, { Size: 4 });
  const diff = await call('/GraphDriver.Diff', { ID: 'ctr', Parent: 'base' });
  assert.is(diff.status, 200);
  const names = tarNames(diff.body);
  assert.equal(names, ['etc/', 'etc/hostname']);

  assert.is((await call('/GraphDriver.Put', { ID: 'ctr' })).text.trim(), '{}');
  assert.not.ok(isMounted(root));
  const err = await call('/GraphDriver.Get', { ID: 'missing' });
  assert.is(err.status, 500);
  assert.match(String(err.json.Err), /missing/);
  assert.is((await call('/GraphDriver.Remove', { ID: 'ctr' })).status, 200);
  assert.is((await call('/GraphDriver.Exists', { ID: 'ctr' })).json.Exists, false);
  assert.is((await call('/GraphDriver.Cleanup', {})).text.trim(), '{}');
});

test('a client that disconnects mid-ApplyDiff leaves no layer content and no staging dir', async () => {
  await call('/GraphDriver.Create', { ID: 'aborted' });
  // Two whole members and no end-of-archive blocks: cut here, it would parse as a complete (short) layer.
  const head = Buffer.concat([file('a', 'A'.repeat(1000)), file('b', 'B')]);
  const { req, reply } = openCall(socket, '/GraphDriver.ApplyDiff?id=aborted&parent=');
  reply.catch(() => undefined);
  req.write(head);
  await waitFor(() => layerEntries('aborted').some((n) => n.startsWith('.staging')), 'the apply to start staging');
  req.destroy();
  // Get takes the layer's lock: it answers once the aborted apply has let go of the layer.
  const got = await call('/GraphDriver.Get', { ID: 'aborted' });
  assert.is(got.status, 200, got.text);
  assert.equal(readdirSync(String(got.json.Dir)), []);
  assert.equal(layerEntries('aborted'), ['diff', 'link']);
  // The layer still takes a whole archive afterwards.
  const full = await call('/GraphDriver.ApplyDiff?id=aborted&parent=', tarOf(file('a', 'A'), file('b', 'B')));
  assert.equal(full.json, { Size: 2 });
});

test('a truncated ApplyDiff body (mid-member, clean close) is a 400 and leaves nothing', async () => {
  await call('/GraphDriver.Create', { ID: 'trunc' });
  const whole = tarOf(file('big', Buffer.alloc(4096, 7)));
  const r = await call('/GraphDriver.ApplyDiff?id=trunc&parent=', whole.subarray(0, 2048));
  assert.is(r.status, 400, r.text);
  assert.match(String(r.json.Err), /truncated/);
  assert.equal(layerEntries('trunc'), ['diff', 'link']);
  assert.equal(readdirSync(join(home, 'trunc', 'diff')), []);
});

test('ApplyDiff in dockerd\'s framing (many small chunks, some turns past 1 MiB) makes the layer applyDiff makes from a file; no tar-split record kept', async () => {
  const big = Buffer.alloc(1536 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const tar = tarOf(dir('d/', { mode: 0o750 }),
    ...Array.from({ length: 300 }, (_, i) => file(`d/f${i}`, `content ${i} `.repeat(i % 97), { mode: 0o600 + (i % 64), uid: i % 5 })),
    file('big', big), symlink('d/link', '../big'), hardlink('d/again', 'big'), file('tail', 'end'));
  const path = join(scratch.root, 'framing.tar');
  writeFileSync(path, tar);
  await call('/GraphDriver.Create', { ID: 'from-file' });
  const fileSize = await plugin.driver!.applyDiff('from-file', '', path);

  await call('/GraphDriver.Create', { ID: 'from-http' });
  const { req, reply } = openCall(socket, '/GraphDriver.ApplyDiff?id=from-http&parent=');
  // dockerd's client flushes every write of its tar-split pipe as a chunk of its own: 512-byte
  // headers and file data in pieces. Some writes go out in a burst of more than 1 MiB (one I/O turn
  // on the plugin's side), the rest a few at a time.
  const sizes = [512, 8192, 100, 32768, 3];
  for (let off = 0, i = 0; off < tar.length; i++) {
    const n = sizes[i % sizes.length];
    req.write(tar.subarray(off, off + n));
    off += n;
    if (i % 7 === 0 && (off < 600_000 || off > 1_900_000)) await new Promise((r) => setImmediate(r));
  }
  req.end();
  const r = await reply;
  assert.is(r.status, 200, r.text);
  assert.equal(r.json, { Size: fileSize });
  assert.equal(treeListing(join(home, 'from-http', 'diff')), treeListing(join(home, 'from-file', 'diff')));
  // dockerd keeps the tar-split data and the diffID of what it imports; the driver's file path keeps its own.
  assert.ok(existsSync(join(home, 'from-file', 'ovl2-layer.json')));
  assert.equal(layerEntries('from-http'), ['diff', 'link']);
});

test('a client that disconnects mid-ApplyDiff after more than a coalesced chunk leaves no layer content', async () => {
  await call('/GraphDriver.Create', { ID: 'cut-late' });
  const { req, reply } = openCall(socket, '/GraphDriver.ApplyDiff?id=cut-late&parent=');
  reply.catch(() => undefined);
  req.on('error', () => undefined);
  req.write(Buffer.concat([file('a', Buffer.alloc(3 << 20, 1)), file('b', 'B')]));
  await waitFor(() => layerEntries('cut-late').some((n) => n.startsWith('.staging')) &&
    readdirSync(join(home, 'cut-late')).length > 0, 'the apply to start staging');
  await new Promise((r) => setTimeout(r, 50));
  req.destroy();
  const got = await call('/GraphDriver.Get', { ID: 'cut-late' });
  assert.is(got.status, 200, got.text);
  assert.equal(readdirSync(String(got.json.Dir)), []);
  await call('/GraphDriver.Put', { ID: 'cut-late' });
  assert.equal(layerEntries('cut-late'), ['diff', 'link']);
});

test('a long ApplyDiff on one layer does not block calls on others; per-layer order holds', async () => {
  await call('/GraphDriver.Create', { ID: 'slow' });
  await call('/GraphDriver.Create', { ID: 'fast' });
  const { req, reply } = openCall(socket, '/GraphDriver.ApplyDiff?id=slow&parent=');
  req.write(file('first', 'x'));
  await waitFor(() => layerEntries('slow').some((n) => n.startsWith('.staging')), 'the slow apply to start');
  // While 'slow' waits for the rest of its body, other layers go through all their calls.
  const [fastApply, created] = await Promise.all([
    call('/GraphDriver.ApplyDiff?id=fast&parent=', tarOf(file('f', 'fast'))),
    call('/GraphDriver.CreateReadWrite', { ID: 'fast-rw', Parent: 'fast' }),
  ]);
  assert.equal(fastApply.json, { Size: 4 });
  assert.is(created.status, 200);
  const gets = await Promise.all([1, 2, 3].map(() => call('/GraphDriver.Get', { ID: 'fast-rw' })));
  assert.ok(gets.every((g) => g.status === 200 && g.json.Dir === join(home, 'fast-rw', 'merged')));
  for (let i = 0; i < 3; i++) await call('/GraphDriver.Put', { ID: 'fast-rw' });
  assert.not.ok(isMounted(join(home, 'fast-rw', 'merged')));
  // A Get of the slow layer queues behind its apply (moby's per-id lock) instead of seeing half of it.
  let gotSlow = false;
  const slowGet = call('/GraphDriver.Get', { ID: 'slow' }).then((r) => { gotSlow = true; return r; });
  await new Promise((r) => setTimeout(r, 100));
  assert.is(gotSlow, false);
  req.end(Buffer.concat([file('second', 'yy'), Buffer.alloc(1024)]));
  assert.equal((await reply).json, { Size: 3 });
  assert.equal(readdirSync(String((await slowGet).json.Dir)).sort(), ['first', 'second']);
});

test('a Diff stream that dockerd stops reading does not block other layers; a hang-up ends it cleanly', async () => {
  await call('/GraphDriver.Create', { ID: 'huge' });
  const big = tarOf(file('blob', Buffer.alloc(32 << 20, 1)));
  assert.is((await call('/GraphDriver.ApplyDiff?id=huge&parent=', big)).status, 200);
  const { req, reply } = openCall(socket, '/GraphDriver.Diff');
  reply.catch(() => undefined);
  const response = new Promise<import('node:http').IncomingMessage>((r) => req.once('response', r));
  req.on('error', () => undefined);
  req.end(JSON.stringify({ ID: 'huge' }));
  const res = await response;
  res.on('error', () => undefined);
  res.pause();
  assert.is(res.headers['content-type'], 'application/x-tar');
  // The export is parked on back-pressure; the plugin answers everything else meanwhile.
  assert.is((await call('/GraphDriver.Exists', { ID: 'fast' })).json.Exists, true);
  assert.equal((await call('/GraphDriver.DiffSize', { ID: 'fast' })).json, { Size: 4 });
  req.destroy();
  assert.is((await call('/GraphDriver.Exists', { ID: 'huge' })).json.Exists, true);
  // A complete Diff of the same layer still streams every byte.
  const whole = await call('/GraphDriver.Diff', { ID: 'huge' });
  assert.is(whole.body.length >= (32 << 20) + 512, true);
});

test('a second instance on a live socket is refused with one line; a stale socket is replaced', async () => {
  const err = await rejectsWithCode(() => servePlugin({ socket }), 'ERR_SOCKET_IN_USE');
  assert.match(err.message, /another process is serving/);
  assert.not.match(err.message, /\n/);
  assert.is((await call('/Plugin.Activate')).status, 200);

  // A socket whose server was SIGKILLed (no cleanup ran): the next instance takes its place.
  const stale = join(scratch.root, 'stale.sock');
  const killed = spawnSync(process.execPath, ['-e',
    `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.is(killed.signal, 'SIGKILL');
  assert.ok(lstatSync(stale).isSocket());
  const second = await servePlugin({ socket: stale });
  try {
    assert.is((await pluginCall(stale, '/Plugin.Activate')).status, 200);
    assert.is(statSync(stale).mode & 0o777, 0o600);
  } finally {
    await second.close();
  }
  assert.not.ok(existsSync(stale));

  const notSocket = join(scratch.root, 'file.sock');
  writeFileSync(notSocket, 'keep me');
  await rejectsWithCode(() => servePlugin({ socket: notSocket }), 'ERR_BAD_OPTION');
  assert.is(readFileSync(notSocket, 'utf8'), 'keep me');
  await rejectsWithCode(() => servePlugin({ name: 'overlay2', socket: join(scratch.root, 'x.sock') }), 'ERR_BAD_OPTION');
  await rejectsWithCode(() => servePlugin({ name: 'a:b', socket: join(scratch.root, 'y.sock') }), 'ERR_BAD_OPTION');
});

test('Init maps UIDMaps/GIDMaps to the driver: layer dirs belong to the remapped root', async () => {
  const sock = join(scratch.root, 'userns.sock');
  const p = await servePlugin({ socket: sock });
  try {
    const h = join(scratch.root, 'userns-home');
    const maps = [{ container_id: 0, host_id: 100000, size: 65536 }];
    const init = await pluginCall(sock, '/GraphDriver.Init', { Home: h, Opts: [], UIDMaps: maps, GIDMaps: maps });
    assert.is(init.status, 200, init.text);
    await pluginCall(sock, '/GraphDriver.Create', { ID: 'u' });
    const st = statSync(join(h, 'u', 'diff'));
    assert.equal([st.uid, st.gid], [100000, 100000]);
  } finally {
    await p.close();
  }
});

test('close() aborts an ApplyDiff in flight (no half layer), unmounts everything, removes the socket', async () => {
  const sock = join(scratch.root, 'close.sock');
  const h = join(scratch.root, 'close-home');
  const p = await servePlugin({ socket: sock, home: h, graceMs: 100 });
  // `home` overrides the Home dockerd sends.
  await pluginCall(sock, '/GraphDriver.Init', { Home: join(scratch.root, 'ignored'), Opts: [] });
  assert.ok(existsSync(join(h, 'l')));
  assert.not.ok(existsSync(join(scratch.root, 'ignored')));
  await pluginCall(sock, '/GraphDriver.Create', { ID: 'b' });
  await pluginCall(sock, '/GraphDriver.CreateReadWrite', { ID: 'c', Parent: 'b' });
  const merged = String((await pluginCall(sock, '/GraphDriver.Get', { ID: 'c' })).json.Dir);
  assert.ok(isMounted(merged));
  await pluginCall(sock, '/GraphDriver.Create', { ID: 'inflight' });
  const { req, reply } = openCall(sock, '/GraphDriver.ApplyDiff?id=inflight&parent=');
  const outcome = reply.then(() => 'answered', () => 'cut');
  req.on('error', () => undefined);
  req.write(file('partial', 'p'));
  await waitFor(() => readdirSync(join(h, 'inflight')).some((n) => n.startsWith('.staging')), 'the apply to start');
  await p.close();
  assert.is(await outcome, 'cut');
  assert.equal(readdirSync(join(h, 'inflight')).sort(), ['diff', 'link']);
  assert.equal(readdirSync(join(h, 'inflight', 'diff')), []);
  assert.not.ok(isMounted(merged));
  assert.not.ok(existsSync(sock));
});

test('SIGTERM on `overlay2 plugin` unmounts everything, removes the socket, exits 0', async () => {
  const sock = join(scratch.root, 'cli.sock');
  const h = join(scratch.root, 'cli-home');
  const cli = CLI_BIN;
  const child = spawn(process.execPath, [cli, 'plugin', '--name', 'overlay2-cli-test', '--socket', sock, '--home', h, '--grace', '0.2'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  try {
    await waitFor(() => stderr.includes('serving overlay2-cli-test'), 'the plugin to listen', 10_000);
    await pluginCall(sock, '/GraphDriver.Init', { Home: h, Opts: [] });
    await pluginCall(sock, '/GraphDriver.Create', { ID: 'b' });
    await pluginCall(sock, '/GraphDriver.CreateReadWrite', { ID: 'c', Parent: 'b' });
    const merged = String((await pluginCall(sock, '/GraphDriver.Get', { ID: 'c' })).json.Dir);
    assert.ok(isMounted(merged));
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.equal([code, signal], [0, null], stderr);
    assert.not.ok(isMounted(merged));
    assert.not.ok(existsSync(sock));
    assert.match(stderr, /SIGTERM: finishing calls in flight/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('managed: each Init home beneath the propagated mount is served as one directory per driver name', async () => {
  const pm = join(scratch.root, 'pm');
  const sock = join(scratch.root, 'managed.sock');
  const managed = await servePlugin({ name: 'overlay2-managed-test', socket: sock, propagatedMount: pm, graceMs: 200 });
  try {
    for (const [name, dirName] of [['ovl2:latest', 'ovl2%3Alatest'], ['example/ovl2-graphdriver', 'example%2Fovl2-graphdriver'], ['ovl2', 'ovl2']]) {
      const init = await pluginCall(sock, '/GraphDriver.Init', { Home: `${pm}/${name}`, Opts: [] });
      assert.is(init.status, 200, JSON.stringify(init.json));
      assert.is(managed.driver?.home, join(pm, dirName));
      await pluginCall(sock, '/GraphDriver.Create', { ID: `layer-of-${dirName.length}` });
      assert.ok(existsSync(join(pm, dirName, `layer-of-${dirName.length}`)));
    }
    // the same name again: the same home, its layers still there
    await pluginCall(sock, '/GraphDriver.Init', { Home: `${pm}/ovl2:latest`, Opts: [] });
    assert.ok((await pluginCall(sock, '/GraphDriver.Exists', { ID: `layer-of-${'ovl2%3Alatest'.length}` })).json.Exists);
    assert.not.ok(existsSync(join(pm, 'ovl2:latest')));
    assert.not.ok(existsSync(join(pm, 'example')));
    for (const home of [join(scratch.root, 'elsewhere'), pm, `${pm}/../x`]) {
      const r = await pluginCall(sock, '/GraphDriver.Init', { Home: home, Opts: [] });
      assert.is(r.status, 400, home);
      assert.match(String(r.json.Err), /propagated mount|names no driver/);
    }
  } finally {
    await managed.close();
  }
  assert.is(homeDirName('a.b_c-D9'), 'a.b_c-D9');
  assert.is(homeDirName('reg.example:5000/x/y:v1.2'), 'reg.example%3A5000%2Fx%2Fy%3Av1.2');
});

test('managed: the plugin settings from the environment are driver options dockerd\'s Opts come after', async () => {
  assert.equal(settingsOptions({ THIN_ROOT: '/cvmfs', CVMFS_MOUNT_METHOD: '', THIN_MOUNT_COMMAND: '/bin/m', DRIVER_OPTS: ' overlay2.size=1G  a=b ' }),
    ['thin.root=/cvmfs', 'thin.mount_command=/bin/m', 'overlay2.size=1G', 'a=b']);
  assert.equal(settingsOptions({}), []);
  const pm = join(scratch.root, 'pm2');
  const sock = join(scratch.root, 'managed2.sock');
  const managed = await servePlugin({ socket: sock, propagatedMount: pm, driverOptions: ['thin.root=/settings-root'], graceMs: 200 });
  try {
    await pluginCall(sock, '/GraphDriver.Init', { Home: `${pm}/a`, Opts: [] });
    assert.is(managed.driver?.options.thin.root, '/settings-root');
    await pluginCall(sock, '/GraphDriver.Init', { Home: `${pm}/b`, Opts: ['thin.root=/daemon-root'] });
    assert.is(managed.driver?.options.thin.root, '/daemon-root');
  } finally {
    await managed.close();
  }
});

test('`overlay2 plugin bundle`: config.json and rootfs/ from this machine; usage and name errors in one line', () => {
  const out = join(scratch.root, 'bundle');
  const made = spawnSync(process.execPath, [CLI_BIN, 'plugin', 'bundle', '-o', out, '--name', 'example/ovl2-graphdriver'], { encoding: 'utf8' });
  assert.is(made.status, 0, made.stderr);
  assert.match(made.stdout, /docker plugin create example\/ovl2-graphdriver /);
  assert.match(made.stdout, /--storage-driver example\/ovl2-graphdriver:latest/);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.interface, { types: ['docker.graphdriver/1.0'], socket: 'overlay2.sock' });
  assert.equal(config.linux.capabilities, ['CAP_SYS_ADMIN']);
  assert.is(config.entrypoint[0], '/usr/local/bin/node');
  assert.ok(statSync(join(out, 'rootfs', 'usr/local/bin/node')).mode & 0o111);
  assert.ok(existsSync(join(out, 'rootfs', 'opt/overlay2/shim/build/Release/overlay2_shim.node')));
  assert.is(statSync(join(out, 'rootfs', 'tmp')).mode & 0o7777, 0o1777);
  // the plugin's own node, its libraries and the CLI run in the rootfs alone
  const ran = spawnSync('chroot', [join(out, 'rootfs'), ...config.entrypoint.slice(0, 2), '--version'], { encoding: 'utf8' });
  assert.is(ran.status, 0, ran.stderr);
  assert.match(ran.stdout, /^overlay2 /);
  const again = spawnSync(process.execPath, [CLI_BIN, 'plugin', 'bundle', '-o', out], { encoding: 'utf8' });
  assert.is(again.status, 1);
  assert.match(again.stderr, /^overlay2: plugin bundle: .* is not empty; give a new or empty directory\n$/);
  const bad = spawnSync(process.execPath, [CLI_BIN, 'plugin', 'bundle', '-o', join(scratch.root, 'b2'), '--name', 'Overlay2'], { encoding: 'utf8' });
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /invalid name "Overlay2"/);
  assert.is(spawnSync(process.execPath, [CLI_BIN, 'plugin', 'bundle'], { encoding: 'utf8' }).status, 2);
  const other = spawnSync(process.execPath, [CLI_BIN, 'plugin', 'frob'], { encoding: 'utf8' });
  assert.is(other.status, 2);
  assert.match(other.stderr, /unknown subcommand "frob"/);
});

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every entry under `root`: path, type, mode, owner, size, link target, content (sorted). */
function treeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(join(root, path))}`
        : st.isFile() ? `${st.size} ${createHash('sha256').update(readFileSync(join(root, path))).digest('hex')} nlink ${st.nlink}` : 'dir';
      out.push(`${path} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk('');
  return out;
}

/** Member names of a plain tar (no long names here). */
function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const block = tar.subarray(off, off + 512);
    if (block.every((b) => b === 0)) break;
    const name = block.toString('latin1', 0, 100).replace(/\0.*$/s, '');
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (block[156] !== 0x78 /* x: PAX */) names.push(name);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

test.run();
