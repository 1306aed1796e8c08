// diffSize: our directorySize (streaming scanner → WASM) beside GNU `du -sb` and moby's DiffSize
// (directory.Size over the layer's diff dir) on the same trees, warm cache, median of N runs.
//   node dist/bench/diffsize.js [runs=7]
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { directorySize } from '../src/size/directory-size.js';
import { withCore } from '../src/core/wasm.js';
import { scanStream } from '../src/scan/stream.js';
import { tryLoadShim } from '../src/native/shim.js';
import { ensurePeer } from './lib/peers.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { generatedTree, debianMinbase, systemUsr, countEntries, MobyHome, type DataSet } from './lib/trees.js';

const runs = Math.max(5, Number(process.argv[2] ?? 7));

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function fallbackSize(dir: string): Promise<number> {
  return withCore(async (core) => {
    await scanStream(core, dir, 0, (slot, count) => core.exports.sizeConsume(slot.recordsAddr, count), { fallback: true });
    return Number(core.exports.sizeTotal());
  });
}

interface Row { set: DataSet; entries: number; ours: number[]; fallback: number[]; du: number[]; moby: number[]; size: number; mobySize: number }

async function measure(set: DataSet, mobyBin: string | null): Promise<Row> {
  const row: Row = { set, entries: countEntries(set.dir), ours: [], fallback: [], du: [], moby: [], size: NaN, mobySize: NaN };
  let moby: MobyHome | null = null;
  if (mobyBin) {
    moby = new MobyHome(mobyBin, 'size');
    moby.create('layer', null, set.dir, true);
  }
  try {
    // warm the page cache and the JIT once, then interleave the contenders run by run
    row.size = await directorySize(set.dir);
    spawnSync('du', ['-sb', set.dir]);
    for (let i = 0; i < runs; i++) {
      row.ours.push(await timeIt(() => directorySize(set.dir)));
      row.du.push(await timeIt(() => spawnSync('du', ['-sb', set.dir])));
      if (moby) {
        const r = moby.run(['diffsize', 'layer', '-']);
        row.moby.push(r.opMs);
        row.mobySize = Number(r.out.trim());
      }
      if (i < 3) row.fallback.push(await timeIt(() => fallbackSize(set.dir)));
    }
    const fb = await fallbackSize(set.dir);
    if (fb !== row.size) console.error(`!! fallback size ${fb} != shim size ${row.size} on ${set.name}`);
  } finally {
    moby?.dispose();
  }
  return row;
}

async function main(): Promise<void> {
  if (!tryLoadShim()) console.error('!! the shim is not built: "ours" uses the fast-glob fallback');
  const mobyBin = ensurePeer('moby-ovl');
  if (!mobyBin) console.log('peer not built: moby-ovl (bash ../shared/peers/build.sh bench/.peers failed)');
  const sets = [generatedTree(), debianMinbase(), systemUsr()].filter((s): s is DataSet => s !== null);
  const rows: Row[] = [];
  for (const set of sets) rows.push(await measure(set, mobyBin));
  console.log(`\ndiffSize, median of ${runs} warm runs (ms); fallback = our fast-glob scanner (median of 3)\n`);
  console.log(table(
    ['tree', 'entries', 'bytes (ours = moby)', 'ours', 'du -sb', 'moby DiffSize', 'du ÷ ours', 'moby ÷ ours', 'ours, fallback scanner'],
    rows.map((r) => [
      r.set.name, r.entries, `${r.size}${Number.isNaN(r.mobySize) ? '' : r.mobySize === r.size ? ' (=)' : ` (moby ${r.mobySize}!)`}`,
      fmtMs(median(r.ours)), fmtMs(median(r.du)), fmtMs(median(r.moby)),
      ratio(median(r.du), median(r.ours)), ratio(median(r.moby), median(r.ours)), fmtMs(median(r.fallback)),
    ]),
  ));
  console.log('');
  for (const r of rows) console.log(`${r.set.name}: ${r.set.note} (${r.set.dir})`);
}

await main();
