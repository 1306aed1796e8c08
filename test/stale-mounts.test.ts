// Mounts left by a process killed with -9: the next driver's first get() of the layer replaces them
// (every stacked copy), so its put() leaves nothing mounted; a sibling driver's live mount is kept.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Overlay2Driver } from '../src/driver.js';
import { overlayMountsAt } from '../src/mount/stale.js';
import { loadShim } from '../src/native/shim.js';
import { mountTest, removeTree, tempDir } from './support/env.js';

const maybe = mountTest();
const DRIVER = join(process.cwd(), 'dist', 'src', 'driver.js');

/** A child process that inits a driver on `home`, mounts `id`, says so, and waits to be killed. */
async function mountAndGetKilled(home: string, id: string): Promise<void> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    import { Overlay2Driver } from ${JSON.stringify(DRIVER)};
    const d = await Overlay2Driver.init(${JSON.stringify(home)});
    console.log(await d.get(${JSON.stringify(id)}));
    setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`child exited ${code} before mounting`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
}

maybe('after kill -9 during a mount, a new driver\'s get+put leaves the merged dir unmounted (stacked copies too)', async () => {
  const root = tempDir('ovl2-stale-');
  const home = join(root, 'home');
  try {
    const setup = await Overlay2Driver.init(home);
    await setup.create('base');
    await setup.createReadWrite('rw', 'base');
    await mountAndGetKilled(home, 'rw');
    const merged = join(home, 'rw', 'merged');
    assert.is(overlayMountsAt(merged), 1, 'the killed process left its mount');
    // Two more stacked on top, as repeated crashes left them.
    const shim = loadShim();
    for (const n of ['x1', 'x2']) {
      fs.mkdirSync(join(root, n));
      shim.mount('overlay', merged, 'overlay', 0, `lowerdir=${join(root, n)}:${join(home, 'base', 'diff')}`);
    }
    assert.is(overlayMountsAt(merged), 3);

    const d = await Overlay2Driver.init(home);
    const path = await d.get('rw');
    assert.is(overlayMountsAt(merged), 1, 'one fresh mount, the stale ones gone');
    fs.writeFileSync(join(path, 'written'), 'through the new mount');
    assert.ok(fs.existsSync(join(home, 'rw', 'diff', 'written')), 'the mount is the layer\'s own');
    await d.put('rw');
    assert.is(overlayMountsAt(merged), 0, 'nothing mounted after put');
  } finally {
    removeTree(root);
  }
});

maybe('a mount held by another driver instance of this process is not stale', async () => {
  const root = tempDir('ovl2-stale-');
  const home = join(root, 'home');
  try {
    const a = await Overlay2Driver.init(home);
    await a.create('base');
    await a.createReadWrite('rw', 'base');
    const merged = await a.get('rw');
    const b = await Overlay2Driver.init(home);
    await b.get('rw');
    await b.put('rw');
    assert.is(overlayMountsAt(merged), 1, 'a still has its mount');
    fs.writeFileSync(join(merged, 'f'), 'x');
    await a.put('rw');
    assert.is(overlayMountsAt(merged), 0);
  } finally {
    removeTree(root);
  }
});

test.run();
