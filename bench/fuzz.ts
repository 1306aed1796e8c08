// The tar fuzzer at length: N seeded cases (default 100,000) of mutated layers through applyLayer,
// the same engine and rules as test/fuzz.test.ts. Prints the outcome counts; every finding is written
// to bench/.data/fuzz-findings/seed-<n>.bin (copy real ones to test/fixtures/fuzz/ as regressions).
//   npm run build:ts && node dist/bench/fuzz.js [cases=100000] [seed0=1000000]
import * as fs from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fuzz } from '../test/support/tar-fuzz.js';

const cases = Number(process.argv[2] ?? 100_000);
const seed0 = Number(process.argv[3] ?? 1_000_000);
const out = fileURLToPath(new URL('../../bench/.data/fuzz-findings/', import.meta.url));
const root = fs.mkdtempSync(join(tmpdir(), 'ovl2-fuzz-bench-'));
const started = Date.now();
const BATCH = 5000;
const all = { cases: 0, ok: 0, refused: {} as Record<string, number>, knownRaw: {} as Record<string, number>, findings: 0 };
try {
  for (let s = seed0; s < seed0 + cases; s += BATCH) {
    const dir = fs.mkdtempSync(join(root, 'b'));
    const t = await fuzz(dir, s, Math.min(BATCH, seed0 + cases - s), (f) => {
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(join(out, `seed-${f.seed}.bin`), f.input);
      console.log(`finding: seed ${f.seed} (${f.kind}): ${f.detail}`);
    });
    fs.rmSync(dir, { recursive: true, force: true });
    all.cases += t.cases; all.ok += t.ok; all.findings += t.findings.length;
    for (const [k, v] of Object.entries(t.refused)) all.refused[k] = (all.refused[k] ?? 0) + v;
    for (const [k, v] of Object.entries(t.knownRaw)) all.knownRaw[k] = (all.knownRaw[k] ?? 0) + v;
    console.log(`${all.cases} cases, ${((Date.now() - started) / 1000).toFixed(0)} s: ${all.ok} applied, refused ${JSON.stringify(all.refused)}, raw errnos ${JSON.stringify(all.knownRaw)}, ${all.findings} findings`);
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
console.log(`fuzz: seeds ${seed0}..${seed0 + cases - 1}: ${all.cases} cases in ${((Date.now() - started) / 1000).toFixed(0)} s; ${all.findings} findings`);
