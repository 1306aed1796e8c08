// The native classification in the WASM core, driven by the real walk (classifyUpper) over
// hand-built upper and lower trees: each case checks the expected lines AND that native equals the
// naive comparison of the merged trees (mergeLayers, an independent model of overlay's lookup).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native, naive, mergeLayers, lines, f, d, wh, l, type Entry } from './core-fixtures.js';
import { rng } from './support/rng.js';
import { NeedsNaive } from '../src/changes/native.js';

async function check(upper: Entry[], lowers: Entry[][], want: string[] | null): Promise<string[]> {
  const { changes, fake } = await native(upper, lowers);
  const got = lines(changes);
  const oracle = lines(naive(mergeLayers([upper, ...lowers]), mergeLayers(lowers)));
  assert.equal(got, oracle, 'native == naive(merged layer, merged parent)');
  if (want) assert.equal(got, want);
  assert.is(fake.opened, 0, 'every lower dir handle was closed');
  return got;
}

const base = (): Entry[] => [d('a'), f('a/x'), f('a/y'), d('a/sub'), f('a/sub/k'), f('top'), d('e')];

test('add at the root and below a lower directory', async () => {
  await check([f('new')], [base()], ['A /new']);
  await check([d('a'), f('a/new')], [base()], ['C /a', 'A /a/new']);
  await check([d('a'), d('a/sub'), f('a/sub/n')], [base()], ['C /a', 'C /a/sub', 'A /a/sub/n']);
});

test('a whiteout deletes what the lowers have, and nothing else', async () => {
  await check([d('a'), wh('a/x')], [base()], ['C /a', 'D /a/x']);
  await check([wh('ghost')], [base()], []);
  await check([wh('a')], [base()], ['D /a']);
});

test('an opaque upper dir deletes every old child it has no entry for', async () => {
  const lower = [d('o'), f('o/a'), f('o/b'), d('o/sub'), f('o/sub/k')];
  await check([d('o', { opaque: true }), f('o/c')], [lower], ['C /o', 'D /o/a', 'D /o/b', 'A /o/c', 'D /o/sub']);
  // an unchanged copy of an old child inside the opaque dir is no change
  await check([d('o', { opaque: true }), f('o/a')], [lower], ['C /o', 'D /o/b', 'D /o/sub']);
  // the kernel ignores opaque on the layer root
  await check([d('o')], [lower], []);
});

test('copy-up without a real change is no change', async () => {
  await check([d('a'), f('a/x'), d('a/sub')], [base()], []);
});

test('file → directory: C, everything below A; directory → file: C only', async () => {
  await check([d('top', { opaque: true }), f('top/a'), d('top/s'), f('top/s/b')], [base()], ['C /top', 'A /top/a', 'A /top/s', 'A /top/s/b']);
  await check([d('top'), f('top/a')], [base()], ['C /top', 'A /top/a']);
  await check([f('a')], [base()], ['C /a']);
});

test("a block device or socket over a directory: C and D for each old child (moby's dir-like rule)", async () => {
  await check([f('a', { type: 'b' })], [base()], ['C /a', 'D /a/sub', 'D /a/x', 'D /a/y']);
  await check([f('x', { type: 's' })], [[d('x'), wh('x/b'), f('x/c')], [d('x'), f('x/a'), f('x/b')]], ['C /x', 'D /x/a', 'D /x/c']);
  await check([f('a', { type: 'p' })], [base()], ['C /a']);
});

test('stat and capability changes', async () => {
  await check([f('top', { perm: 0o600 })], [base()], ['C /top']);
  await check([f('top', { uid: 7 })], [base()], ['C /top']);
  await check([f('top', { size: 11 })], [base()], ['C /top']);
  await check([f('top', { nsec: 5 })], [base()], []);
  await check([f('top', { caps: [1, 0, 0, 2, 32, 0, 0, 0] })], [base()], ['C /top']);
  await check([f('cap', { caps: [1, 0, 0, 2, 32, 0, 0, 0] })], [[f('cap', { caps: [1, 0, 0, 2, 32, 0, 0, 0] })]], []);
  await check([d('a', { perm: 0o700 })], [base()], ['C /a']);
  await check([l('lnk', { size: 9 })], [[l('lnk', { size: 4 })]], ['C /lnk']);
});

test('several lowers with whiteouts and opaque dirs of their own', async () => {
  const l1 = [wh('x'), d('d', { opaque: true }), f('d/new1'), f('y')];
  const l2 = [f('x'), d('d'), f('d/old2'), f('y'), f('z')];
  await check([f('x'), d('d'), f('d/up'), wh('y')], [l1, l2], ['C /d', 'A /d/up', 'A /x', 'D /y']);
  await check([d('d', { opaque: true })], [l1, l2], ['C /d', 'D /d/new1']);
  await check([wh('z')], [l1, l2], ['D /z']);
});

test('lookups go past layers that lack the name, and stop at a non-directory', async () => {
  const l1 = [d('p')], l2: Entry[] = [f('q')], l3 = [d('p'), f('p/deep'), d('q'), f('q/under')];
  await check([d('p', { opaque: true })], [l1, l2, l3], ['C /p', 'D /p/deep']);
  // q is a file in l2: l3's q/ is hidden, so q/under was never in the old tree
  await check([d('q', { opaque: true }), f('q/under')], [l1, l2, l3], ['C /q', 'A /q/under']);
  const m1 = [d('p')], m2 = [f('p')], m3 = [d('p'), f('p/z')];
  await check([d('p', { opaque: true })], [m1, m2, m3], []);
  await check([d('p'), f('p/z')], [m1, m2, m3], ['C /p', 'A /p/z']);
});

test('whiteouts inside a new directory are invisible', async () => {
  await check([d('n'), wh('n/w'), f('n/f')], [base()], ['A /n', 'A /n/f']);
});

test('no lowers at all: everything is A', async () => {
  await check([d('a'), f('a/b'), wh('w'), f('c')], [], ['A /a', 'A /a/b', 'A /c']);
});

test('a lower redirect asks for the naive path', async () => {
  try {
    await native([d('r'), f('r/n')], [[d('r', { redirect: '/elsewhere' })]]);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.ok(e instanceof NeedsNaive, String(e));
  }
});

test('a directory with more children than one lookup batch holds', async () => {
  const lower: Entry[] = [d('big')];
  const upper: Entry[] = [d('big')];
  const want = ['C /big'];
  for (let i = 0; i < 5000; i++) {
    const name = `big/n${String(i).padStart(5, '0')}`;
    if (i % 2 === 0) lower.push(f(name));
    upper.push(i % 4 === 1 ? wh(name) : f(name));
    if (i % 2 === 1 && i % 4 !== 1) want.push(`A /${name}`);
  }
  const { changes, fake } = await native(upper, [lower]);
  assert.equal(lines(changes), want);
  assert.ok(fake.lookups >= 5000, 'every upper name was looked up');
});

// A small seeded generator: random layers over a tiny name space hit every combination of
// whiteout / opaque / type change across layers.

function randomLayer(r: () => number, prefix = '', depth = 0, out: Entry[] = [], names = ['a', 'b', 'c', 'd']): Entry[] {
  for (const name of names) {
    const path = prefix + name;
    const x = r();
    if (x < 0.35) continue;
    if (x < 0.6) out.push(f(path, { size: r() < 0.5 ? 10 : 11, perm: r() < 0.8 ? 0o644 : 0o600 }));
    else if (x < 0.85 && depth < 3) {
      out.push(d(path, { opaque: r() < 0.2, perm: r() < 0.9 ? 0o755 : 0o700 }));
      randomLayer(r, `${path}/`, depth + 1, out, names);
    } else if (x < 0.95) out.push(wh(path));
    else out.push(f(path, { type: r() < 0.5 ? 'b' : 'l' }));
  }
  return out;
}

test('random layer stacks: native equals the naive comparison of the merged trees', async () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const lowers = Array.from({ length: 1 + Math.floor(r() * 4) }, () => randomLayer(r));
    const upper = randomLayer(r);
    const { changes } = await native(upper, lowers);
    const oracle = naive(mergeLayers([upper, ...lowers]), mergeLayers(lowers));
    assert.equal(lines(changes), lines(oracle), `seed ${seed}`);
  }
});

// Names that sort between a directory's own key and its subtree's ("a" < "a-1" < "a.b" < "a/..."):
// the walk must decide a's parent-C before it walks a/ (a probe when a sibling lies between), and
// write a/'s subtree after them. Chunks of one byte hand out the output after every change, so the
// pending dirs and probes are crossed by chunk boundaries everywhere.
test('random stacks with names that sort between "a" and "a/", in one-change chunks', async () => {
  const names = ['a', 'a-1', 'a.b', 'b'];
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const lowers = Array.from({ length: 1 + Math.floor(r() * 4) }, () => randomLayer(r, '', 0, [], names));
    const upper = randomLayer(r, '', 0, [], names);
    const { changes, chunks } = await native(upper, lowers, { chunkBytes: 1 });
    const oracle = naive(mergeLayers([upper, ...lowers]), mergeLayers(lowers));
    assert.equal(lines(changes), lines(oracle), `seed ${seed}`);
    assert.ok(changes.length === 0 || chunks >= changes.length / 4, `seed ${seed}: ${chunks} chunks for ${changes.length} changes`);
  }
});

test('a probe: a sibling between "lib" and "lib/" decides lib\'s parent-C before lib/ is walked', async () => {
  const lower = [d('lib'), f('lib/x'), d('lib.d'), f('lib.d/y')];
  // lib.d has a change, lib has one below it: C /lib comes first, then lib.d's, then lib/'s
  await check([d('lib'), f('lib/new'), d('lib.d'), f('lib.d/new')], [lower], ['C /lib', 'C /lib.d', 'A /lib.d/new', 'A /lib/new']);
  // lib unchanged below (a copy-up): no C /lib, though lib.d changed
  await check([d('lib'), f('lib/x'), d('lib.d'), f('lib.d/new')], [lower], ['C /lib.d', 'A /lib.d/new']);
});

test.run();
