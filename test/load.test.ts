// Load in one process: 1,000 concurrent get/put over 50 ids. Every get sees the layer's content,
// nothing fails (no EBUSY), and at the end every reference is dropped and no mount is left.
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../src/driver.js';
import { mountTest, scratchRoot, isMounted } from './support/env.js';
import { rng } from './support/rng.js';
import { isMountReferenced } from '../src/mount/shared-refs.js';

const test = mountTest(uvuTest);
const scratch = scratchRoot('ovl2-load-');
const IDS = 50, OPS = 1000;
test.after(() => scratch.remove());

function mountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(dir + '/'));
}

test(`${OPS} concurrent get/put over ${IDS} ids: all succeed, references right, no mount left`, async () => {
  const home = join(scratch.root, 'home');
  const driver = await Overlay2Driver.init(home);
  await driver.create('base');
  fs.writeFileSync(join(home, 'base', 'diff', 'shared'), 'base');
  const ids = [...Array(IDS).keys()].map((i) => `c${i}`);
  for (const id of ids) {
    await driver.createReadWrite(id, 'base');
    fs.writeFileSync(join(home, id, 'diff', 'own'), id);
  }
  // This process's references per layer (one shared record per process: HOME/.refs).
  const held = (driver as unknown as { held: Map<string, number> }).held;
  const refs = { count: (merged: string) => held.get(merged.split('/').slice(-2, -1)[0]!) ?? 0 };
  const r = rng(1000);
  const plan = [...Array(OPS).keys()].map(() => ({ id: ids[Math.floor(r() * IDS)]!, hold: Math.floor(r() * 5) }));
  let peak = 0;
  const failures: string[] = [];
  await Promise.all(plan.map(async ({ id, hold }) => {
    try {
      const root = await driver.get(id);
      peak = Math.max(peak, refs.count(join(home, id, 'merged')));
      // hold the mount over a few turns of the event loop, so gets and puts of one id interleave
      for (let i = 0; i < hold; i++) await new Promise((res) => setImmediate(res));
      if (fs.readFileSync(join(root, 'own'), 'utf8') !== id) failures.push(`${id}: wrong content`);
      if (fs.readFileSync(join(root, 'shared'), 'utf8') !== 'base') failures.push(`${id}: lower not visible`);
      await driver.put(id);
    } catch (e) {
      failures.push(`${id}: ${(e as Error & { code?: string }).code}: ${(e as Error).message}`);
    }
  }));
  assert.equal(failures, [], 'every get/put succeeded');
  assert.ok(peak > 1, `references overlapped (peak ${peak})`);
  for (const id of ids) {
    assert.is(refs.count(join(home, id, 'merged')), 0, `${id}: no reference left`);
    assert.not.ok(isMountReferenced(home, id), `${id}: no shared reference record left`);
    assert.not.ok(isMounted(join(home, id, 'merged')), `${id}: unmounted`);
  }
  assert.equal(mountsUnder(home), [], 'no leaked mount');
  // held references are counted: 3 gets need 3 puts
  await driver.get('c0'); await driver.get('c0'); await driver.get('c0');
  await driver.put('c0'); await driver.put('c0');
  assert.ok(isMounted(join(home, 'c0', 'merged')), 'one reference still holds the mount');
  await driver.put('c0');
  assert.not.ok(isMounted(join(home, 'c0', 'merged')));
  await driver.cleanup();
});

test.run();
