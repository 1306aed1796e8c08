#!/usr/bin/env node
// Packs the locally built shim as this platform's prebuilt package with @napi-rs/cli, so users
// without a compiler can install overlay2: npm/<platform>/ gets the .node file;
// package.json lists that directory as a file: optional dependency and bundles it, so `npm pack`
// ships the prebuilt inside the overlay2 tarball (see "The package" in the README for why).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'shim', 'build', 'Release', 'overlay2_shim.node');
if (!existsSync(built)) {
  console.error('build the shim first: npm run build:shim');
  process.exit(1);
}
const napi = join(root, 'node_modules', '.bin', 'napi');
const run = (...args) => {
  const r = spawnSync(napi, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
const platform = `linux-${process.arch}-gnu`;
const artifacts = join(root, 'artifacts');
rmSync(artifacts, { recursive: true, force: true });
mkdirSync(artifacts);
copyFileSync(built, join(artifacts, `overlay2-shim.${platform}.node`));
run('create-npm-dir', '-t', '.');
run('artifacts', '-d', 'artifacts', '--dist', 'npm');
rmSync(artifacts, { recursive: true, force: true });
// napi also drops a copy at the package root (its build output dir); only npm/<platform>/ is wanted
rmSync(join(root, `overlay2-shim.${platform}.node`), { force: true });
console.log(`npm/${platform}/overlay2-shim.${platform}.node is ready; npm pack bundles it (bundleDependencies)`);
