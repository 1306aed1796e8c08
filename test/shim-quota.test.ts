// The shim's project-quota exports: fsxattr ioctls and XFS quotactl, success and Node-style failures.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { openSync, closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadShim, type ShimError } from '../src/native/shim.js';
import { tempDir, removeTree } from './support/env.js';

const shim = loadShim();
const base = tempDir();
test.after(() => removeTree(base));

function thrown(fn: () => unknown): ShimError {
  try { fn(); } catch (e) { return e as ShimError; }
  throw new Error('expected a throw');
}

test('fsxattrGet reads the fsxattr of a directory; fsxattrSet writes the same values back', () => {
  const dir = join(base, 'd');
  mkdirSync(dir);
  const fd = openSync(dir, 'r');
  try {
    const x = shim.fsxattrGet(fd);
    for (const k of ['xflags', 'projid', 'extsize', 'nextents', 'cowextsize'] as const) assert.type(x[k], 'number');
    shim.fsxattrSet(fd, x.xflags, x.projid);
    assert.equal(shim.fsxattrGet(fd), x);
  } finally {
    closeSync(fd);
  }
});

test('fsxattr on a bad fd fails like Node: EBADF from ioctl', () => {
  const e = thrown(() => shim.fsxattrGet(987654));
  assert.is(e.code, 'EBADF');
  assert.is(e.errno, -9);
  assert.is(e.syscall, 'ioctl');
  assert.is(thrown(() => shim.fsxattrSet(987654, 0, 0)).code, 'EBADF');
});

test('xfs quotactl on a missing device: ENOENT naming the device', () => {
  const dev = join(base, 'no-such-device');
  for (const e of [thrown(() => shim.xfsQuotaGet(dev, 1)), thrown(() => shim.xfsQuotaSetLimit(dev, 1, 0))]) {
    assert.is(e.code, 'ENOENT');
    assert.is(e.syscall, 'quotactl');
    assert.is(e.path, dev);
  }
});

test('bad argument types are TypeErrors', () => {
  assert.throws(() => shim.fsxattrGet('x' as unknown as number), (e: Error) => e instanceof TypeError);
  assert.throws(() => shim.xfsQuotaGet(1 as unknown as string, 1), (e: Error) => e instanceof TypeError);
});

test.run();
