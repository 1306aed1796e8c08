#!/usr/bin/env node
// npm "install" step: use the prebuilt shim for this platform when its package is installed
// (made with @napi-rs/cli, see scripts/prebuilt.mjs), otherwise compile shim/ with node-gyp.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const prebuilt = `overlay2-linux-${process.arch}-gnu`;

try {
  require(prebuilt);
  console.log(`overlay2: using the prebuilt shim from ${prebuilt}`);
  process.exit(0);
} catch {
  // not installed for this platform: build from source
}

// Build against the system's Node headers when they are there (Debian's nodejs-dev / node packages),
// so nothing is downloaded; otherwise node-gyp finds headers its own way.
const args = ['rebuild', '--directory', join(root, 'shim')];
if (existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const r = spawnSync('node-gyp', args, { stdio: 'inherit', shell: false });
if (r.error || r.status !== 0) {
  console.error(`overlay2: building the native shim failed (${r.error?.message ?? `exit ${r.status}`}); it needs python3, make and a C compiler`);
  process.exit(1);
}
