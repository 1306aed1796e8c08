// Mount references shared between processes through the home (src/mount/shared-refs.ts).
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { isMountReferenced } from '../src/mount/shared-refs.js';
import { mountTest, scratchRoot, isMounted } from './support/env.js';

const test = mountTest(uvuTest);
let scratch: ReturnType<typeof scratchRoot>;
test.before(() => { scratch = scratchRoot('ovl2-refs-'); });
test.after(() => scratch.remove());

const driverModule = join(process.cwd(), 'dist', 'src', 'driver.js');

/** A child process that opens `home`, get()s `id`, prints the path, and waits to be killed. */
function holder(home: string, id: string): Promise<{ kill(): Promise<void>; pid: number }> {
  const code = `const { Overlay2Driver } = await import(${JSON.stringify(driverModule)});
    const d = await Overlay2Driver.init(${JSON.stringify(home)});
    console.log(await d.get(${JSON.stringify(id)}));
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve({
      pid: child.pid!,
      kill: () => new Promise((done) => { child.once('exit', () => done()); child.kill('SIGKILL'); }),
    }));
    child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
}

test('a put in one process leaves the mount another live process holds', async () => {
  const home = join(scratch.fresh(), 'h');
  const d = await Overlay2Driver.init(home);
  await d.create('b');
  await d.create('x', 'b');
  const h = await holder(home, 'x');
  try {
    const merged = await d.get('x');
    assert.ok(isMounted(merged));
    await d.put('x');
    assert.ok(isMounted(merged), 'the other process still holds it');
    assert.ok(isMountReferenced(home, 'x'));
    const refs = JSON.parse(readFileSync(join(home, '.refs', 'x.json'), 'utf8'));
    assert.equal(Object.keys(refs.pids), [String(h.pid)]);
  } finally {
    await h.kill();
  }
});

test('references of a dead process drop out (crash recovery); the next put unmounts', async () => {
  const home = join(scratch.fresh(), 'h');
  const d = await Overlay2Driver.init(home);
  await d.create('b');
  await d.create('y', 'b');
  const h = await holder(home, 'y');
  const merged = join(home, 'y', 'merged');
  assert.ok(isMounted(merged));
  assert.ok(isMountReferenced(home, 'y'));
  await h.kill();
  assert.not.ok(isMountReferenced(home, 'y'), 'a killed holder holds nothing');
  assert.ok(isMounted(merged), 'the mount itself stays until someone releases it');
  await d.get('y'); // reuses the orphaned mount
  await d.put('y');
  assert.not.ok(isMounted(merged));
  assert.not.ok(existsSync(join(home, '.refs', 'y.json')));
});

test('persistent references (the CLI\'s) outlive their process and pair up across processes', async () => {
  const home = join(scratch.fresh(), 'h');
  const d = await Overlay2Driver.init(home);
  await d.create('b');
  await d.create('z', 'b');
  const open = () => Overlay2Driver.init(home, [], { mountReferences: 'persistent' });
  const merged = await (await open()).get('z');
  await (await open()).get('z');
  await (await open()).put('z');
  assert.ok(isMounted(merged));
  assert.ok(isMountReferenced(home, 'z'));
  await (await open()).put('z');
  assert.not.ok(isMounted(merged));
  assert.not.ok(isMountReferenced(home, 'z'));
});

test('cleanup drops every reference', async () => {
  const home = join(scratch.fresh(), 'h');
  const d = await Overlay2Driver.init(home, [], { mountReferences: 'persistent' });
  await d.create('b');
  await d.create('w', 'b');
  await d.get('w');
  await d.get('w');
  await d.cleanup();
  assert.not.ok(isMountReferenced(home, 'w'));
  assert.not.ok(isMounted(join(home, 'w', 'merged')));
  assert.is(spawnSync('true').status, 0);
});

test.run();
