#!/usr/bin/env node
// npm "install" step of overlay2: make sure the native shim loads.
// - In an installed package: use this platform's prebuilt shim when it loads (the bundled optional
//   dependency overlay2-linux-<arch>-gnu, made with @napi-rs/cli: scripts/prebuilt.mjs); otherwise
//   compile shim/ with node-gyp. Without a prebuilt and without the tools to compile, say so in one
//   line and let the install succeed: the package's JavaScript installs, and every driver call
//   says the same line until `npm rebuild overlay2` has built the shim.
// - In a development checkout (src/ is there): always compile, loudly — the prebuilt may be stale.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, dirname, delimiter } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const platform = `linux-${process.arch}-gnu`;
const prebuilt = `overlay2-${platform}`;
const development = existsSync(join(root, 'src'));

if (!development) {
  try {
    require(prebuilt);
    console.log(`overlay2: using the prebuilt shim from ${prebuilt}`);
    process.exit(0);
  } catch {
    // none for this platform (or it does not load here): build from source
  }
}

const onPath = (cmd) => (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
const missing = [['python3'], ['make'], ['c++', 'g++', 'clang++']]
  .filter((alternatives) => !alternatives.some(onPath)).map((a) => a[0]);
const say = (line) => console.error(`overlay2: ${line}`);
if (missing.length > 0) {
  say(`no prebuilt shim for ${platform} and cannot build one: ${missing.join(', ')} missing; install python3, make and g++, then run \`npm rebuild overlay2\``);
  process.exit(development ? 1 : 0);
}

// Build against the system's Node headers when they are there (Debian's nodejs-dev / node packages),
// so nothing is downloaded; otherwise node-gyp finds headers its own way.
const args = ['rebuild', '--directory', join(root, 'shim')];
if (existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const r = spawnSync('node-gyp', args, development ? { stdio: 'inherit' } : { encoding: 'utf8' });
if (r.error || r.status !== 0) {
  const log = join(root, 'shim', 'build-error.log');
  if (!development) {
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, `${r.error?.message ?? ''}${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  say(`building the native shim failed (${r.error?.code === 'ENOENT' ? 'node-gyp not found' : `node-gyp exit ${r.status}`}${development ? '' : `; its output is in ${log}`}); fix that, then run \`npm rebuild overlay2\``);
  process.exit(development ? 1 : 0);
}
