#!/usr/bin/env node
// Runs the uvu suite (compiled tests in dist/test) and ends with the line CI reads:
// "N passed, N failed, N skipped". uvu prints Total/Passed/Skipped but no failed count, and a
// crash or a file without test.run() can print nothing: both count as failures here.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'dist', 'test');
// Arguments pick test files by substring; "!substring" leaves files out (e.g. the VM pass of .ci/run).
const only = process.argv.slice(2).filter((a) => !a.startsWith('!'));
const except = process.argv.slice(2).filter((a) => a.startsWith('!')).map((a) => a.slice(1));
if (!existsSync(testDir)) {
  console.error('no compiled tests in dist/test: run `npm run build` first');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const files = readdirSync(testDir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .filter((f) => !except.some((o) => f.includes(o)))
  .sort();

// The CLI tests run the package's bin, the bundle of dist/src (scripts/bundle-cli.mjs): after a bare
// `npx tsc` it would be stale, so it is rebuilt first when any compiled source is newer.
const bundle = join(root, 'dist', 'cli', 'bundle.cjs');
const srcDir = join(root, 'dist', 'src');
const newest = Math.max(...readdirSync(srcDir, { recursive: true }).filter((f) => String(f).endsWith('.js'))
  .map((f) => statSync(join(srcDir, String(f))).mtimeMs));
if (!existsSync(bundle) || statSync(bundle).mtimeMs < newest) {
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs')], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) {
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

let passed = 0, failed = 0, skipped = 0;
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
for (const f of files) {
  const started = Date.now();
  // One process per file: a crash or a leaked mount in one file cannot hide another's results.
  const r = spawnSync(process.execPath, [join(testDir, f)], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = strip((r.stdout ?? '') + (r.stderr ?? ''));
  process.stdout.write(out);
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    console.log(`!! ${f}: no uvu summary (exit ${r.status}, signal ${r.signal}) — counted as 1 failure`);
    failed += 1;
    continue;
  }
  // uvu's Total counts the tests it ran plus none of the skipped ones.
  const fileFailed = total - ok + (r.status !== 0 && total === ok ? 1 : 0);
  passed += ok;
  failed += fileFailed;
  skipped += skip;
  console.log(`== ${f}: ${ok} passed, ${fileFailed} failed, ${skip} skipped (${secs}s)`);
}
if (files.length === 0) {
  console.log('no test files found');
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
