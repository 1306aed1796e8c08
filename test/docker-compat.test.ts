// A store written by Docker's overlay2 opens and mounts with this driver, and the other way round.
// Docker's side is moby's real driver (20.10) as a CLI; without it these tests are skipped, loudly.
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync, statSync, readlinkSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { mountTest, tempDir, removeTree, isMounted, testIf } from './support/env.js';
import { findPeer, runPeer } from './support/peers.js';

const moby = findPeer('moby-ovl');
const test = mountTest(testIf(!!moby, 'Docker compatibility tests', 'moby-ovl not built (bash ../shared/peers/build.sh /opt/ovl-peers)'));
let base = '';
let home = '';

function docker(...args: string[]) {
  const r = runPeer(moby as string, home, args);
  if (r.code !== 0) throw new Error(`moby-ovl ${args.join(' ')} failed: ${r.err}`);
  return r.out.trim();
}

test.before(() => {
  base = tempDir();
  home = join(base, 'overlay2');
});
test.after(() => removeTree(base));

test('Docker creates a stack; we open the home, mount it and read every layer', async () => {
  docker('create', 'd-base', '-');
  writeFileSync(join(home, 'd-base', 'diff', 'from-docker-base'), 'base');
  docker('create', 'd-mid', 'd-base');
  mkdirSync(join(home, 'd-mid', 'diff', 'etc'));
  writeFileSync(join(home, 'd-mid', 'diff', 'etc', 'conf'), 'mid');
  docker('--rw', 'create', 'd-ctr', 'd-mid');

  const driver = await Overlay2Driver.init(home);
  assert.equal((await driver.list()).sort(), ['d-base', 'd-ctr', 'd-mid']);
  assert.is(await driver.parentOf('d-ctr'), 'd-mid');
  const meta = await driver.getMetadata('d-ctr');
  assert.is(meta.LowerDir, [join(home, 'd-mid', 'diff'), join(home, 'd-base', 'diff')].join(':'));
  const root = await driver.get('d-ctr');
  try {
    assert.is(readFileSync(join(root, 'from-docker-base'), 'utf8'), 'base');
    assert.is(readFileSync(join(root, 'etc', 'conf'), 'utf8'), 'mid');
    writeFileSync(join(root, 'written-by-us'), 'ours');
  } finally {
    await driver.put('d-ctr');
  }
  assert.is(readFileSync(join(home, 'd-ctr', 'diff', 'written-by-us'), 'utf8'), 'ours');
});

test('we create layers on Docker\'s; Docker mounts ours and reads the whole chain', async () => {
  const driver = await Overlay2Driver.init(home);
  await driver.create('our-layer', 'd-mid');
  writeFileSync(join(home, 'our-layer', 'diff', 'from-us'), 'us');
  await driver.createReadWrite('our-ctr', 'our-layer');

  const path = docker('get', 'our-ctr');
  try {
    assert.is(path, join(home, 'our-ctr', 'merged'));
    assert.ok(isMounted(path));
    assert.is(readFileSync(join(path, 'from-us'), 'utf8'), 'us');
    assert.is(readFileSync(join(path, 'etc', 'conf'), 'utf8'), 'mid');
    assert.is(readFileSync(join(path, 'from-docker-base'), 'utf8'), 'base');
  } finally {
    docker('put', 'our-ctr');
  }
  assert.not.ok(isMounted(join(home, 'our-ctr', 'merged')));
  // Docker's view of our metadata is the same as ours
  const meta = Object.fromEntries(docker('metadata', 'our-ctr').split('\n').map((l) => l.split('=') as [string, string]));
  assert.equal(meta, await driver.getMetadata('our-ctr'));
  // and Docker removes our layer cleanly, link included
  const link = readFileSync(join(home, 'our-ctr', 'link'), 'utf8');
  docker('remove', 'our-ctr');
  assert.not.ok(readdirSync(join(home, 'l')).includes(link));
});

test('layers we write look exactly like Docker\'s on disk (files, modes, link format)', async () => {
  const driver = await Overlay2Driver.init(home);
  docker('create', 'cmp-d-base', '-');
  docker('create', 'cmp-d', 'cmp-d-base');
  await driver.create('cmp-o-base');
  await driver.create('cmp-o', 'cmp-o-base');
  const shape = (id: string) => {
    const dir = join(home, id);
    const out: Record<string, string> = {};
    for (const name of readdirSync(dir).sort()) {
      const st = statSync(join(dir, name));
      out[name] = `${st.isDirectory() ? 'd' : 'f'} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    }
    out['.'] = (statSync(dir).mode & 0o7777).toString(8);
    return out;
  };
  assert.equal(shape('cmp-o'), shape('cmp-d'));
  assert.equal(shape('cmp-o-base'), shape('cmp-d-base'));
  for (const id of ['cmp-o', 'cmp-d']) {
    const link = readFileSync(join(home, id, 'link'), 'utf8');
    assert.match(link, /^[A-Z2-7]{26}$/);
    assert.is(readlinkSync(join(home, 'l', link)), `../${id}/diff`);
  }
  assert.match(readFileSync(join(home, 'cmp-o', 'lower'), 'utf8'), /^l\/[A-Z2-7]{26}$/);
});

test.run();
