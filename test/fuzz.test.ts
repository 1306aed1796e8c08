// A bounded, seeded run of the tar fuzzer (test/support/tar-fuzz.ts): every mutated layer ends in
// success or an Overlay2Error with a documented code, never another exception, a hang or a write
// outside the layer. Findings are kept as fixtures in test/fixtures/fuzz/ and replayed here.
// FUZZ_SEED / FUZZ_CASES change the run; bench/fuzz.ts runs 100k+.
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, testIf, scratchRoot } from './support/env.js';
import { fuzz, fuzzArea, runCase } from './support/tar-fuzz.js';

const test = testIf(isRoot, 'the tar fuzzer', 'not running as root (the extractor chowns and makes device nodes)');
const SEED = Number(process.env.FUZZ_SEED ?? 1);
const CASES = Number(process.env.FUZZ_CASES ?? 2000);
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/fuzz/', import.meta.url));
const scratch = scratchRoot('ovl2-fuzz-');
uvuTest.after(() => scratch.remove());

test(`${CASES} mutated layers (seed ${SEED}): success or a documented Overlay2Error, nothing outside the layer`, async () => {
  const totals = await fuzz(scratch.fresh(), SEED, CASES);
  console.error(`fuzz: ${totals.cases} cases: ${totals.ok} applied, refused ${JSON.stringify(totals.refused)}, raw errnos ${JSON.stringify(totals.knownRaw)}, ${totals.findings.length} findings`);
  assert.equal(totals.findings.map((f) => `seed ${f.seed} (${f.kind}): ${f.detail}`), [], 'no findings');
  assert.ok(totals.ok > 0 && Object.keys(totals.refused).length > 0, 'the mutations reach both outcomes');
});

test('regression fixtures from earlier fuzz findings', async () => {
  const names = fs.existsSync(FIXTURES) ? fs.readdirSync(FIXTURES).filter((n) => n.endsWith('.bin')) : [];
  for (const name of names) {
    const area = fuzzArea(scratch.fresh());
    const res = await runCase(area.layer, fs.readFileSync(join(FIXTURES, name)));
    assert.ok(res.outcome !== 'finding', `${name}: ${res.detail}`);
    assert.is(area.check(), '', `${name}: nothing outside the layer`);
  }
});

uvuTest.run();
