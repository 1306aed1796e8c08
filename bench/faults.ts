// Longer kill -9 runs than the suite's: runs test/faults.test.js (create, native and naive applyDiff,
// remove, get/put) and test/faults-load-plugin.test.js (`overlay2 load`, the plugin's ApplyDiff and
// Diff streams) — every kill followed by a re-init that checks the home — with more trials per kind
// and a chosen seed; and test/refs-processes.test.js (processes sharing one home: get/put rounds,
// concurrent load, remove against create) at REFS_ROUNDS/REFS_OPS/REFS_PARENT_ROUNDS (default
// 2000/2500/300). Prints the tests' own counts. WHICH: all (default), core, load-plugin or refs.
//   npm run build:ts && node dist/bench/faults.js [trials-per-kind=100] [seed=20261130] [which=all]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const trials = process.argv[2] ?? '100';
const seed = process.argv[3] ?? '20261130';
const which = process.argv[4] ?? 'all';
const files = [
  ...(which === 'all' || which === 'core' ? [['core (5 kinds)', 'faults.test.js']] : []),
  ...(which === 'all' || which === 'load-plugin' ? [['load and plugin (3 kinds)', 'faults-load-plugin.test.js']] : []),
  ...(which === 'all' || which === 'refs' ? [['processes on one home', 'refs-processes.test.js']] : []),
];
if (files.length === 0) throw new Error(`faults bench: WHICH is all, core, load-plugin or refs, not ${which}`);
let failed = 0;
for (const [what, name] of files) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [fileURLToPath(new URL(`../test/${name}`, import.meta.url))], {
    env: {
      REFS_ROUNDS: '2000', REFS_OPS: '2500', REFS_PARENT_ROUNDS: '300',
      ...process.env, FAULT_TRIALS: trials, FAULT_SEED: seed, NO_COLOR: '1',
    },
    stdio: 'inherit',
  });
  console.log(`faults bench: ${what}: ${trials} trials per kind, seed ${seed}: exit ${r.status} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
