// The diff operations through the driver: native and naive paths agree, a diff applied onto a fresh
// layer reproduces the changes, the CLI's diff/apply/changes/diffsize work end to end.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { promises as fsp, writeFileSync, mkdirSync, readFileSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { Overlay2Driver } from '../src/driver.js';
import { mountTest, tempDir, removeTree } from './support/env.js';
import { CLI_BIN } from './support/cli.js';

const test = mountTest(uvuTest);
let base = '';
let driver: Overlay2Driver;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A comparable description of a tree: path → type, mode, owner, size/target, content hash. */
function describe(root: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, rel)).sort()) {
    const p = join(rel, name);
    const st = lstatSync(join(root, p));
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    const body = st.isFile() ? readFileSync(join(root, p)).toString('base64') : st.isSymbolicLink() ? readlinkSync(join(root, p)) : '';
    out[p] = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${kind === 'd' ? '' : Math.floor(st.mtimeMs / 1000)} ${body}`;
    if (st.isDirectory()) Object.assign(out, describe(root, p));
  }
  return out;
}

test.before(async () => {
  base = tempDir();
  driver = await Overlay2Driver.init(join(base, 'home'));
  // base: content written straight into its diff dir
  await driver.create('base');
  const d = join(driver.home, 'base', 'diff');
  mkdirSync(join(d, 'etc'));
  mkdirSync(join(d, 'usr/share/doc'), { recursive: true });
  writeFileSync(join(d, 'etc/hostname'), 'base\n');
  writeFileSync(join(d, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(d, 'usr/share/doc/a'), 'a');
  writeFileSync(join(d, 'usr/share/doc/b'), 'b');
  writeFileSync(join(d, 'gone'), 'to be deleted');
  // app: changes made through the mount, so the kernel writes whiteouts and opaque dirs
  await driver.create('app', 'base');
  const root = await driver.get('app');
  writeFileSync(join(root, 'etc/hostname'), 'app\n');
  await fsp.rm(join(root, 'gone'));
  await fsp.rm(join(root, 'usr/share/doc'), { recursive: true });
  mkdirSync(join(root, 'usr/share/doc'));
  writeFileSync(join(root, 'usr/share/doc/new'), 'new');
  mkdirSync(join(root, 'srv'));
  writeFileSync(join(root, 'srv/app.js'), 'run()');
  await fsp.chmod(join(root, 'etc/passwd'), 0o600);
  await driver.put('app');
});
test.after(async () => {
  await driver?.cleanup();
  removeTree(base);
});

test('changes: native (upper dir alone) equals the naive comparison of the two mounts', async () => {
  const native = await driver.changes('app', 'base');
  const naive = await driver.changesNaive('app', 'base');
  assert.equal(native, naive);
  assert.equal(native.map((c) => `${c.kind} ${c.path}`), [
    'C /etc', 'C /etc/hostname', 'C /etc/passwd', 'D /gone', 'A /srv', 'A /srv/app.js',
    'C /usr', 'C /usr/share', 'C /usr/share/doc', 'D /usr/share/doc/a', 'D /usr/share/doc/b', 'A /usr/share/doc/new',
  ]);
});

test('diffSize: the upper dir\'s bytes natively; a non-direct parent takes the naive path', async () => {
  const size = await driver.diffSize('app', 'base');
  assert.is(size, 'app\n'.length + 'root:x:0:0::/root:/bin/sh\n'.length + 'new'.length + 'run()'.length);
  await driver.create('top', 'app');
  writeFileSync(join(driver.home, 'top', 'diff', 'more'), '12345');
  // 'base' is not top's direct parent: naive = sizes of the changed files seen through the mount
  assert.is(await driver.diffSize('top', 'base'), size + 5);
  assert.is(await driver.diffSize('top', 'app'), 5);
});

test('diff → applyDiff onto a fresh layer on the same parent reproduces the layer', async () => {
  const tar = await collect(await driver.diff('app', 'base'));
  await driver.create('copy', 'base');
  const bytes = await driver.applyDiff('copy', 'base', Readable.from([tar]));
  assert.is(bytes, await driver.diffSize('app', 'base'));
  assert.equal(await driver.changes('copy', 'base'), await driver.changes('app', 'base'));
  const a = await driver.get('app');
  const b = await driver.get('copy');
  try {
    assert.equal(describe(b), describe(a));
  } finally {
    await driver.put('app');
    await driver.put('copy');
  }
});

test('the naive diff (non-direct parent) applies to the same result', async () => {
  const tar = await collect(await driver.diff('top', 'base'));
  await driver.create('top-copy', 'base');
  await driver.applyDiff('top-copy', 'base', Readable.from([tar]));
  const a = await driver.get('top');
  const b = await driver.get('top-copy');
  try {
    assert.equal(describe(b), describe(a));
  } finally {
    await driver.put('top');
    await driver.put('top-copy');
  }
});

test('CLI: diff to a file, apply from it, changes and diffsize', async () => {
  const cli = CLI_BIN;
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, '--home', driver.home, ...args], { encoding: 'utf8' });
  const file = join(base, 'app.tar');
  assert.is(run('diff', 'app', '-o', file).status, 0);
  assert.is(run('create', 'cli-copy', '--parent', 'base').status, 0);
  const applied = run('apply', 'cli-copy', '-i', file);
  assert.is(applied.status, 0, applied.stderr);
  assert.is(Number(applied.stdout.trim()), await driver.diffSize('app', 'base'));
  const changes = run('changes', 'cli-copy');
  assert.is(changes.stdout, (await driver.changes('app', 'base')).map((c) => `${c.kind} ${c.path}\n`).join(''));
  // --json carries path and kind (pathBytes is the API's; here every name is UTF-8, so path is exact)
  assert.equal(JSON.parse(run('changes', 'cli-copy', '--json').stdout), (await driver.changes('app', 'base')).map((c) => ({ path: c.path, kind: c.kind })));
  assert.is(Number(run('diffsize', 'cli-copy').stdout), await driver.diffSize('app', 'base'));
});

test('errors: applyDiff into a mounted layer is refused and changes nothing', async () => {
  await driver.create('busy', 'base');
  const root = await driver.get('busy');
  try {
    writeFileSync(join(root, 'live'), 'written through the mount');
    const tar = await collect(await driver.diff('app', 'base'));
    try {
      await driver.applyDiff('busy', 'base', Readable.from([tar]));
      assert.unreachable('should reject');
    } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_LAYER_BUSY');
    }
    assert.is(readFileSync(join(driver.home, 'busy', 'diff', 'live'), 'utf8'), 'written through the mount');
  } finally {
    await driver.put('busy');
  }
});

test('two applyDiffs into one layer at once: serialized, the layer ends up whole', async () => {
  const tar = await collect(await driver.diff('app', 'base'));
  await driver.create('twice', 'base');
  const results = await Promise.allSettled([
    driver.applyDiff('twice', 'base', Readable.from([tar])),
    driver.applyDiff('twice', 'base', Readable.from([tar])),
  ]);
  assert.ok(results.some((r) => r.status === 'fulfilled'));
  assert.equal(await driver.changes('twice', 'base'), await driver.changes('app', 'base'));
  assert.equal(readdirSync(join(driver.home, 'twice')).filter((n) => n.startsWith('.staging')), []);
});

test('errors: diff operations on missing layers', async () => {
  for (const op of [() => driver.changes('nope', 'base'), () => driver.diffSize('app', 'nope'), () => driver.diff('nope')]) {
    try {
      await op();
      assert.unreachable('should reject');
    } catch (e) {
      assert.is((e as { code?: string }).code, 'ERR_LAYER_NOT_FOUND');
    }
  }
});

test.run();
