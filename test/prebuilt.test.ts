// The prebuilt-package path (@napi-rs/cli): the platform package carries a working shim, and the
// install step of an installed overlay2 uses it instead of compiling.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, symlinkSync, readFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { loadShim } from '../src/native/shim.js';
import { scratchRoot } from './support/env.js';

const root = process.cwd();
const platform = `linux-${process.arch}-gnu`;
const pkgDir = join(root, 'npm', platform);
const scratch = scratchRoot('ovl2-prebuilt-');
test.after(() => scratch.remove());

/** The files of an installed overlay2 the install step looks at (no src/: not a checkout). */
function installedLayout(withPrebuilt: boolean): string {
  const dir = join(scratch.fresh(), 'overlay2');
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  copyFileSync(join(root, 'scripts', 'install-shim.mjs'), join(dir, 'scripts', 'install-shim.mjs'));
  if (withPrebuilt) {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(pkgDir, join(dir, 'node_modules', `overlay2-${platform}`));
  }
  return dir;
}

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

test('package.json lists the platform package as a bundled optional dependency', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  assert.is(pkg.optionalDependencies[`overlay2-${platform}`], `file:npm/${platform}`);
  assert.ok(pkg.bundleDependencies.includes(`overlay2-${platform}`));
});

test('the install step of an installed package takes the prebuilt when it is there', () => {
  const r = spawnSync(process.execPath, [join(installedLayout(true), 'scripts', 'install-shim.mjs')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /using the prebuilt shim/);
});

test('no prebuilt and no compiler: one line naming what is missing and `npm rebuild overlay2`; the install goes on', () => {
  const dir = installedLayout(false);
  const bin = join(dirname(dir), 'bin'); // a PATH with node and nothing else
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  const r = spawnSync(process.execPath, [join(dir, 'scripts', 'install-shim.mjs')],
    { encoding: 'utf8', env: { ...process.env, PATH: bin } });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /no prebuilt shim for linux-.*python3, make, c\+\+ missing.*npm rebuild overlay2/);
  assert.not.ok(existsSync(join(dir, 'shim', 'build')));
});

test.run();
