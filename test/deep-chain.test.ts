// Chains past moby's 128-layer cap: every layer's file is readable through one mount, by each method.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver, KERNEL_MAX_DEPTH } from '../src/driver.js';
import { mountTest, tempDir, removeTree, rejectsWithCode, isMounted, testIf, detectedFeatures, whyNoLowerdirPlus } from './support/env.js';

const test = mountTest(uvuTest);
// Chains past 128 lowers need fsconfig "lowerdir+" (Linux >= 6.8); without it the driver keeps moby's
// limit and refuses the 129th lower with ERR_MAX_DEPTH, which the tests below assert instead.
const features = await detectedFeatures();
const lowerdirPlus = features?.lowerdirPlus === true;
const plusTest = mountTest(testIf(lowerdirPlus, 'chains past 128 lowers', whyNoLowerdirPlus(features)));
let base = '';
let driver: Overlay2Driver;

/** Creates layers chain-0 .. chain-(n-1), each with its own file, returns the top id. */
async function buildChain(prefix: string, n: number, from = ''): Promise<string> {
  let parent = from;
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}`;
    await driver.create(id, parent);
    writeFileSync(join(driver.home, id, 'diff', `file-${i}`), `layer ${i}\n`);
    parent = id;
  }
  return parent;
}

function readsEveryLayer(root: string, prefix: string, n: number): void {
  const names = new Set(readdirSync(root));
  for (let i = 0; i < n; i++) {
    assert.ok(names.has(`file-${i}`), `${prefix}: file-${i} visible`);
    assert.is(readFileSync(join(root, `file-${i}`), 'utf8'), `layer ${i}\n`);
  }
}

test.before(async () => {
  base = tempDir();
  driver = await Overlay2Driver.init(join(base, 'home'));
});
test.after(async () => {
  await driver?.cleanup();
  removeTree(base);
});

test('moby\'s limit: 128 lowers mount on every kernel; the 129th mounts with lowerdir+, else ERR_MAX_DEPTH', async () => {
  const top = await buildChain('m', 128);
  await driver.createReadWrite('m-rw', top);
  const root = await driver.get('m-rw');
  try {
    assert.is((await driver.getMetadata('m-rw')).LowerDir.split(':').length, 128);
    readsEveryLayer(root, 'm', 128);
    writeFileSync(join(root, 'written'), 'rw');
  } finally {
    await driver.put('m-rw');
  }
  assert.is(readFileSync(join(driver.home, 'm-rw', 'diff', 'written'), 'utf8'), 'rw');
  await driver.create('m-128', top);
  writeFileSync(join(driver.home, 'm-128', 'diff', 'file-128'), 'layer 128\n');
  if (!lowerdirPlus) {
    assert.is(driver.maxDepth, 128);
    const e = await rejectsWithCode(() => driver.createReadWrite('m-over', 'm-128'), 'ERR_MAX_DEPTH');
    assert.match(e.message, /m-over.*129 lower layers \(limit 128\)/);
    assert.is(await driver.exists('m-over'), false);
    return;
  }
  await driver.createReadWrite('m-over', 'm-128');
  const over = await driver.get('m-over');
  try {
    assert.is((await driver.getMetadata('m-over')).LowerDir.split(':').length, 129);
    readsEveryLayer(over, 'm', 129);
  } finally {
    await driver.put('m-over');
  }
});

plusTest('300 layers mount through fsconfig lowerdir+ and read back; committed layers too', async () => {
  const top = await buildChain('d', 300);
  await driver.createReadWrite('d-rw', top);
  const root = await driver.get('d-rw');
  try {
    assert.is(driver.lastMountMethod.get('d-rw'), 'fsconfig');
    readsEveryLayer(root, 'd', 300);
  } finally {
    await driver.put('d-rw');
  }
  // d-299 is committed (it has a child): read-only, its own diff as the top lower
  const ro = await driver.get('d-299');
  try {
    readsEveryLayer(ro, 'd', 300);
  } finally {
    await driver.put('d-299');
  }
});

test('each mount method on the same layer gives the same view', async () => {
  const top = await buildChain('s', 20);
  await driver.createReadWrite('s-rw', top);
  // fsconfig mounts need "lowerdir+" (the driver never picks it on older kernels); the others run everywhere.
  const methods = lowerdirPlus ? (['absolute', 'relative', 'fsconfig'] as const) : (['absolute', 'relative'] as const);
  if (!lowerdirPlus) console.error(`!! each mount method: fsconfig not compared: ${whyNoLowerdirPlus(features)}`);
  for (const method of methods) {
    driver.mountStrategy = method;
    const cwd = process.cwd();
    const root = await driver.get('s-rw');
    try {
      assert.is(driver.lastMountMethod.get('s-rw'), method);
      assert.ok(isMounted(root));
      readsEveryLayer(root, `s/${method}`, 20);
      assert.is(process.cwd(), cwd, 'the process cwd never changes');
    } finally {
      await driver.put('s-rw');
    }
  }
  driver.mountStrategy = 'auto';
});

test('the relative-path fallback mounts chains whose absolute mount data exceeds a page', async () => {
  // A long home makes 100 absolute lower paths overflow 4 KiB while "l/<id>" entries still fit.
  const longHome = join(base, 'h'.repeat(120));
  const d2 = await Overlay2Driver.init(longHome);
  let parent = '';
  for (let i = 0; i < 100; i++) {
    await d2.create(`r-${i}`, parent);
    writeFileSync(join(longHome, `r-${i}`, 'diff', `file-${i}`), `layer ${i}\n`);
    parent = `r-${i}`;
  }
  await d2.createReadWrite('r-rw', parent);
  const root = await d2.get('r-rw');
  try {
    assert.is(d2.lastMountMethod.get('r-rw'), 'relative');
    readsEveryLayer(root, 'r', 100);
  } finally {
    await d2.put('r-rw');
    await d2.cleanup();
  }
});

plusTest(`depth beyond the kernel's limit is refused with ERR_MAX_DEPTH (${KERNEL_MAX_DEPTH} lowers)`, async () => {
  const top = await buildChain('z', KERNEL_MAX_DEPTH + 1);
  const e = await rejectsWithCode(() => driver.create('z-over', top), 'ERR_MAX_DEPTH');
  assert.match(e.message, /z-over/);
  assert.is(await driver.exists('z-over'), false);
  // the deepest allowed layer mounts
  const root = await driver.get(top);
  try {
    assert.is(readFileSync(join(root, 'file-0'), 'utf8'), 'layer 0\n');
    assert.is(readFileSync(join(root, `file-${KERNEL_MAX_DEPTH}`), 'utf8'), `layer ${KERNEL_MAX_DEPTH}\n`);
  } finally {
    await driver.put(top);
  }
});

test('without lowerdir+ the driver keeps moby\'s 128 limit', async () => {
  const legacy = await Overlay2Driver.init(join(base, 'legacy'));
  (legacy.features as { lowerdirPlus: boolean }).lowerdirPlus = false;
  assert.is(legacy.maxDepth, 128);
  let parent = '';
  for (let i = 0; i <= 128; i++) {
    await legacy.create(`l-${i}`, parent);
    parent = `l-${i}`;
  }
  await rejectsWithCode(() => legacy.create('l-129', parent), 'ERR_MAX_DEPTH');
});

test.run();
