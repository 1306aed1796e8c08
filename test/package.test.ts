// The package as a new user meets it: `npm pack`, installed into an empty project (offline from the
// npm cache when it can, the registry otherwise), imported from ESM, type-checked from TypeScript
// (node16/nodenext and bundler resolution), and its bin run — on a real home where overlay works.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { readFileSync, writeFileSync, readdirSync, existsSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { scratchRoot, testIf, canMountOverlay, whyNotMount, isMounted } from './support/env.js';
import { SnapshotsClient } from './support/snapshots-client.js';
import { packAndInstall } from './support/packed.js';

const root = process.cwd();
const platform = `linux-${process.arch}-gnu`;
const scratch = scratchRoot('ovl2-pack-');
let project = '';
let tarball = '';

function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: project, ...opts });
  return { code: r.status, out: String(r.stdout ?? ''), err: String(r.stderr ?? '') };
}
const bin = (...args: string[]) => sh(join(project, 'node_modules', '.bin', 'overlay2'), args);

uvuTest.before(() => {
  ({ project, tarball } = packAndInstall(scratch.fresh(), scratch.fresh()));
});
uvuTest.after(() => scratch.remove());

uvuTest('the tarball holds the built package, the license and the bundled prebuilt, no sources or tests', () => {
  const list = sh('tar', ['tzf', tarball]).out.split('\n');
  for (const f of ['package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/dist/src/cli/main.js', 'package/dist/cli/overlay2.cjs',
    'package/dist/cli/bundle.cjs', 'package/LICENSE',
    'package/build/core.wasm', 'package/shim/binding.gyp', `package/node_modules/overlay2-${platform}/overlay2-shim.${platform}.node`]) {
    assert.ok(list.includes(f), f);
  }
  // every C source and header of the shim, so an install without a prebuilt can compile it
  const shimDir = join(root, 'shim');
  const gyp = JSON.parse(readFileSync(join(shimDir, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  const headers = readdirSync(shimDir).filter((f) => f.endsWith('.h'));
  assert.ok(headers.length > 0);
  for (const f of [...gyp.targets[0]!.sources, ...headers]) assert.ok(list.includes(`package/shim/${f}`), f);
  assert.not.ok(list.some((f) => f.startsWith('package/dist/test/') || f.startsWith('package/src/')));
  assert.match(readFileSync(join(project, 'node_modules', 'overlay2', 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
});

uvuTest('no file of the tarball carries the packing checkout\'s path; the installed bin makes its code cache under its own', () => {
  // the V8 code cache kept the name it was compiled under, and stack traces from it named this checkout
  const list = sh('tar', ['tzf', tarball]).out.split('\n').filter(Boolean);
  assert.not.ok(list.includes('package/dist/cli/bundle.cjs.cache'), 'the checkout\'s code cache is not shipped');
  const unpacked = join(scratch.fresh(), 'unpacked');
  mkdirSync(unpacked);
  assert.is(sh('tar', ['xzf', tarball, '-C', unpacked]).code, 0);
  const carrying = sh('grep', ['-rlaF', root, unpacked]);
  assert.is(carrying.out, '', `files naming ${root}: ${carrying.out}`);
  assert.is(carrying.code, 1, carrying.err); // grep: 1 = no match, 2 = trouble
  // the first call writes the cache beside the installed bundle; later calls compile from it, and an
  // error's stack names the installed bundle, not the packer's checkout
  const installed = join(project, 'node_modules', 'overlay2', 'dist', 'cli');
  rmSync(join(installed, 'bundle.cjs.cache'), { force: true });
  assert.is(bin('--version').code, 0);
  assert.ok(existsSync(join(installed, 'bundle.cjs.cache')), 'made at the first call');
  const r = sh(join(project, 'node_modules', '.bin', 'overlay2'), ['--home', join(project, 'no-home'), 'ls'], { env: { ...process.env, OVERLAY2_DEBUG: '1' } });
  assert.is(r.code, 1);
  assert.match(r.err, new RegExp(`${installed.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/bundle\\.cjs:\\d+:\\d+`), r.err);
  assert.not.ok(r.err.includes(root + '/'), r.err);
  assert.equal(readdirSync(installed).filter((n) => n.includes('.tmp-')), []);
});

uvuTest('import { Overlay2Driver } from \'overlay2\' works from ESM', () => {
  const r = sh(process.execPath, ['--input-type=module', '-e', `
    import { Overlay2Driver, Overlay2Error, changesBetween, isMountReferenced } from 'overlay2';
    import pkg from 'overlay2/package.json' with { type: 'json' };
    const e = new Overlay2Error('ERR_NOT_A_STORE', 'x');
    console.log(typeof Overlay2Driver.init, e.code, typeof changesBetween, typeof isMountReferenced, pkg.name);`]);
  assert.is(r.code, 0, r.err);
  assert.is(r.out.trim(), 'function ERR_NOT_A_STORE function function overlay2');
});

const consumer = `import { Overlay2Driver, Overlay2Error, type Overlay2ErrorCode, type Change, type InitOptions, type LayerInfo } from 'overlay2';
export async function use(home: string): Promise<Change[]> {
  const settings: InitOptions = { readOnly: true, mountReferences: 'persistent' };
  const d = await Overlay2Driver.init(home, ['overlay2.override_kernel_check=true'], settings);
  const rows: LayerInfo[] = await d.layers();
  await d.remove(rows[0]!.id, { force: true });
  // @ts-expect-error exists() resolves to a boolean, not a number
  const n: number = await d.exists('x');
  void n;
  return d.changes('a', 'b');
}
export function codeOf(e: unknown): Overlay2ErrorCode | null {
  return e instanceof Overlay2Error ? e.code : null;
}
// @ts-expect-error not one of the documented codes (were the types 'any', these directives would fail)
export const bad: Overlay2ErrorCode = 'ERR_NO_SUCH_CODE';
`;

for (const [module, resolution] of [['NodeNext', 'NodeNext'], ['Node16', 'Node16'], ['ESNext', 'Bundler']] as const) {
  uvuTest(`a TypeScript consumer type-checks (module ${module}, moduleResolution ${resolution})`, () => {
    const dir = join(project, `ts-${resolution}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'consumer.ts'), consumer);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        module, moduleResolution: resolution, target: 'ES2022', strict: true, noEmit: true,
        types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }));
    const r = sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')]);
    assert.is(r.code, 0, r.out + r.err);
  });
}

uvuTest('npx overlay2 --version', () => {
  const r = sh('npx', ['--no', '--', 'overlay2', '--version']);
  assert.is(r.code, 0, r.err);
  assert.is(r.out.trim(), `overlay2 ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}`);
});

testIf(canMountOverlay, 'the installed bin\'s plugin bundle', whyNotMount, uvuTest)('the installed bin writes a managed plugin whose rootfs runs on its own: node, the shim, the hoisted dependencies', () => {
  const out = join(scratch.fresh(), 'bundle');
  const made = bin('plugin', 'bundle', '-o', out);
  assert.is(made.code, 0, made.err);
  const rootfs = join(out, 'rootfs');
  // the dependencies npm hoisted beside the package, in the package's own node_modules in the rootfs
  assert.ok(existsSync(join(project, 'node_modules', 'tar-stream')) && !existsSync(join(project, 'node_modules', 'overlay2', 'node_modules', 'tar-stream')));
  const inRootfs = (code: string) => sh('chroot', [rootfs, '/usr/local/bin/node', '-e', code]);
  const r = inRootfs(`
    const req = require('node:module').createRequire('/opt/overlay2/dist/cli/bundle.cjs');
    for (const m of ['tar-stream', 'fzstd', 'fast-glob', '@grpc/grpc-js', '@grpc/proto-loader']) req(m);
    const shim = require('/opt/overlay2/shim/build/Release/overlay2_shim.node');
    console.log(typeof shim.mount, require('node:fs').statSync('/opt/overlay2/build/core.wasm').size > 0);`);
  assert.is(r.code, 0, r.err);
  assert.is(r.out.trim(), 'function true');
  const version = sh('chroot', [rootfs, '/usr/local/bin/node', '/opt/overlay2/dist/cli/overlay2.cjs', '--version']);
  assert.is(version.code, 0, version.err);
  assert.match(version.out, /^overlay2 /);
});

testIf(canMountOverlay, 'the installed bin on a real home', whyNotMount, uvuTest)('the installed bin creates, lists, mounts and removes layers on a real home', () => {
  const home = join(project, 'home');
  assert.is(bin('create', 'base', '--home', home).code, 0);
  assert.is(bin('create', 'top', '--parent', 'base', '--home', home).code, 0);
  assert.equal(JSON.parse(bin('ls', '--json', '--home', home).out).map((l: { id: string }) => l.id), ['base', 'top']);
  const merged = bin('mount', 'top', '--home', home).out.trim();
  assert.ok(isMounted(merged));
  assert.is(bin('unmount', 'top', '--home', home).code, 0);
  assert.not.ok(isMounted(merged));
  assert.is(bin('remove', 'top', '--home', home).code, 0);
  assert.is(bin('exists', 'top', '--home', home).code, 1);
});

testIf(canMountOverlay, 'the packed package\'s snapshotter on a real home', whyNotMount, uvuTest)('import { serveSnapshotter } from \'overlay2\': containerd\'s Snapshots API on a socket, through the package\'s own .proto', async () => {
  const home = join(scratch.fresh(), 'snap-home');
  const socket = join(scratch.fresh(), 'snap.sock');
  // the server in a process of the consumer project; this process is containerd's side
  const server = spawn(process.execPath, ['--input-type=module', '-e', `
    import { Overlay2Driver, serveSnapshotter, SnapshotError } from 'overlay2';
    const driver = await Overlay2Driver.init(${JSON.stringify(home)});
    const handle = await serveSnapshotter(driver, { socket: ${JSON.stringify(socket)}, log: (l) => console.error(l) });
    let direct = 'found';
    try { handle.snapshotter.stat('nope'); } catch (e) { direct = e instanceof SnapshotError && e.code; }
    console.log('ready', direct);
    process.once('SIGTERM', async () => { await handle.close(); process.exit(0); });`], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  server.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 200 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /ready NOT_FOUND/, err);
    // the client loads the installed package's proto/ (it ships in the tarball)
    const client = new SnapshotsClient(socket, join(project, 'node_modules', 'overlay2', 'proto'));
    try {
      const m = await client.prepare('k1');
      assert.is(m[0]!.type, 'bind');
      await client.commit('c1', 'k1');
      assert.equal((await client.list()).infos.map((i) => [i.name, i.kind]), [['c1', 'COMMITTED']]);
    } finally {
      client.close();
    }
  } finally {
    server.kill('SIGTERM');
  }
  assert.is(await exited, 0, err);
  assert.not.ok(existsSync(socket));
});

uvuTest('without any shim (no prebuilt, nothing built): one clear line naming the fix', () => {
  const bundled = join(project, 'node_modules', 'overlay2', 'node_modules', `overlay2-${platform}`);
  assert.ok(existsSync(bundled));
  rmSync(bundled, { recursive: true });
  rmSync(join(project, 'node_modules', 'overlay2', 'shim', 'build'), { recursive: true, force: true });
  const r = bin('ls', '--home', join(project, 'home2'));
  assert.is(r.code, 1);
  assert.is(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err, /^overlay2: the native shim is missing .*npm rebuild overlay2/);
  assert.not.match(r.err, /overlay2: overlay2:/);
  assert.not.ok(existsSync(join(project, 'home2')));
  assert.equal(readdirSync(join(project, 'node_modules', 'overlay2', 'node_modules')), []);
  // what still works without the shim: changesBetween, through the fast-glob scanner
  const a = join(project, 'tree-a');
  mkdirSync(join(a, 'd'), { recursive: true });
  writeFileSync(join(a, 'd', 'f'), 'x');
  const c = sh(process.execPath, ['--input-type=module', '-e',
    `import { changesBetween } from 'overlay2'; console.log(JSON.stringify((await changesBetween(${JSON.stringify(a)}, null)).map((c) => ({ path: c.path, kind: c.kind }))));`]);
  assert.is(c.code, 0, c.err);
  assert.equal(JSON.parse(c.out), [{ path: '/d', kind: 'A' }, { path: '/d/f', kind: 'A' }]);
});

uvuTest.run();
