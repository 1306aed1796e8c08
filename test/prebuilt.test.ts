// The prebuilt-package path (@napi-rs/cli): the platform package carries a working shim, and the
// install step uses it instead of compiling.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, symlinkSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadShim } from '../src/native/shim.js';

const root = process.cwd();
const platform = `linux-${process.arch}-gnu`;
const pkgDir = join(root, 'npm', platform);

test('npm run prebuilt stages this platform\'s package with the built shim', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'prebuilt.mjs')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  assert.is(manifest.name, `overlay2-${platform}`);
  assert.is(manifest.main, `overlay2-shim.${platform}.node`);
  assert.ok(existsSync(join(pkgDir, manifest.main)));
  assert.not.ok(existsSync(join(root, `overlay2-shim.${platform}.node`)), 'no stray copy at the root');
  const prebuilt = createRequire(import.meta.url)(join(pkgDir, manifest.main)) as Record<string, unknown>;
  const local = loadShim() as unknown as Record<string, unknown>;
  assert.equal(Object.keys(prebuilt).sort(), Object.keys(local).sort());
  assert.type(prebuilt.statfs, 'function');
});

test('the install step takes the prebuilt package when it is installed', () => {
  const link = join(root, 'node_modules', `overlay2-${platform}`);
  rmSync(link, { force: true, recursive: true });
  symlinkSync(pkgDir, link);
  try {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'install-shim.mjs')], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /using the prebuilt shim/);
  } finally {
    rmSync(link, { force: true });
  }
});

test.run();
