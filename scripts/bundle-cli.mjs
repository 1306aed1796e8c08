#!/usr/bin/env node
// Builds the CLI the package's bin runs: dist/src/cli/main.js (tsc's output) and everything it imports
// from this package, bundled by esbuild into one CommonJS file, dist/cli/bundle.cjs, plus a V8 code
// cache of it, dist/cli/bundle.cjs.cache, which the bin (dist/cli/overlay2.cjs, copied from
// scripts/cli-launcher.cjs) hands to V8 so the bundle is not parsed again at every call.
// Why: a CLI call is mostly Node's start-up; on Node 20 (no module.enableCompileCache) each of the ~30
// ES modules `overlay2 exists` loaded cost a resolve, a read and a compile. npm packages stay
// external (required from node_modules when a command needs them); the library (dist/src/index.js)
// is not bundled. Runs after tsc in `npm run build:ts`.
// The cache is this checkout's own: V8 keeps the file name it was made under (stack traces name it),
// so the package leaves it out and an installed bin makes its own at its first call
// (scripts/cli-launcher.cjs).
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'cli');
const bundle = join(out, 'bundle.cjs');
mkdirSync(out, { recursive: true });

/** What both bundles share: CommonJS for Node 20, the package's dependencies left to require(). */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  // import.meta.url is how the sources find package.json, the shim and build/core.wasm (each walks up
  // to the package root, which is as far above dist/cli/ as above dist/src/...)
  define: { 'import.meta.url': '__bundleUrl' },
  // strict first: the sources are ES modules (strict), and esbuild's own "use strict" would come
  // after this banner, where it is no longer a directive
  banner: { js: "'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: [join(root, 'dist', 'src', 'cli', 'main.js')],
  outfile: bundle,
  // the shebang of main.ts: the launcher is the executable, not the bundle
  supported: { hashbang: false },
});
writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/^#!.*\n/, ''));

// The stream worker (src/stream-worker/worker.ts), the thread the plugin's Diff and ApplyDiff streams
// run on: a script of its own beside the bundle (a Worker starts from a file), found by
// src/stream-worker/pool.ts as ./stream-worker.cjs next to the bundle.
await build({
  ...common,
  entryPoints: [join(root, 'dist', 'src', 'stream-worker', 'worker.js')],
  outfile: join(out, 'stream-worker.cjs'),
});

// The code cache: what V8 compiled for the bundle's top level. The launcher wraps the source exactly
// as here; a cache V8 rejects (another Node, other flags) only costs that call a normal compile.
const { wrap } = await import(join(root, 'scripts', 'cli-launcher.cjs'));
const script = new Script(wrap(readFileSync(bundle, 'utf8')), { filename: bundle });
writeFileSync(`${bundle}.cache`, script.createCachedData());

const bin = join(out, 'overlay2.cjs');
rmSync(bin, { force: true });
copyFileSync(join(root, 'scripts', 'cli-launcher.cjs'), bin);
chmodSync(bin, 0o755);

// Better, where a scratch home can be made (root: the home's feature probe mounts): the cache taken
// after a real `exists` call, which also holds the functions that call compiles (-5 ms a call, see
// bench/RESULTS.md). Without root the top-level cache above stays.
warmCache();

function warmCache() {
  const home = mkdtempSync(join(tmpdir(), 'overlay2-code-cache-'));
  try {
    const quiet = { stdio: 'ignore', timeout: 60_000 };
    if (spawnSync(process.execPath, [bin, '--home', home, 'create', 'warm'], quiet).status !== 0) return;
    const warm = `${bundle}.cache.warm`;
    const made = spawnSync(process.execPath, [join(root, 'scripts', 'warm-code-cache.cjs'), bundle, warm, home], quiet);
    if (made.status === 0 && existsSync(warm)) renameSync(warm, `${bundle}.cache`);
    else rmSync(warm, { force: true });
  } finally {
    spawnSync(process.execPath, [bin, '--home', home, 'remove', 'warm'], { stdio: 'ignore', timeout: 60_000 });
    rmSync(home, { recursive: true, force: true });
  }
}
