// Longer kill -9 runs than the suite's: runs test/faults.test.js (create, native and naive applyDiff,
// remove, get/put; every kill followed by a re-init that checks the home) with more trials per kind
// and a chosen seed. Prints the test's own counts.
//   npm run build:ts && node dist/bench/faults.js [trials-per-kind=100] [seed=20261130]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const trials = process.argv[2] ?? '100';
const seed = process.argv[3] ?? '20261130';
const testFile = fileURLToPath(new URL('../test/faults.test.js', import.meta.url));
const started = Date.now();
const r = spawnSync(process.execPath, [testFile], {
  env: { ...process.env, FAULT_TRIALS: trials, FAULT_SEED: seed, NO_COLOR: '1' },
  stdio: 'inherit',
});
console.log(`faults bench: ${trials} trials per kind (5 kinds), seed ${seed}: exit ${r.status} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(r.status ?? 1);
