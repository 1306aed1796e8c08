// Disk usage for a containerd snapshotter's Usage: our diskUsage (shim scan with SCAN_SIZE_ALLOCATED →
// WASM) beside GNU `du -s -B1` and `du -s --inodes` (the figures containerd's fs.DiskUsage gives) on
// the same trees, warm cache, median of N interleaved runs; CPU (user + sys, every thread) beside
// wall time; both figures checked equal to du's in the same run.
//   node dist/bench/disk-usage.js [runs=7] [sets: flat,dirs,generated — default flat,dirs]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { diskUsage } from '../src/size/disk-usage.js';
import { tryLoadShim } from '../src/native/shim.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { timedShell } from './lib/shell.js';
import { generatedTree, smallFilesTree, countEntries, type DataSet } from './lib/trees.js';

const runs = Math.max(5, Number(process.argv[2] ?? 7));
const pick = (process.argv[3] ?? 'flat,dirs').split(',');

interface Row {
  set: DataSet; entries: number; ours: number[]; oursCpu: number[]; duSize: number[]; duSizeCpu: number[];
  duInodes: number[]; fallback: number[]; usage: { size: number; inodes: number }; du: { size: number; inodes: number };
}

function duFigure(args: string[], dir: string): number {
  return Number(spawnSync('du', [...args, dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
}

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function measure(set: DataSet): Promise<Row> {
  const row: Row = {
    set, entries: countEntries(set.dir), ours: [], oursCpu: [], duSize: [], duSizeCpu: [], duInodes: [], fallback: [],
    usage: await diskUsage(set.dir), // warms the page cache and the JIT
    du: { size: duFigure(['-s', '-B1'], set.dir), inodes: duFigure(['-s', '--inodes'], set.dir) },
  };
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    row.ours.push(await timeIt(() => diskUsage(set.dir)));
    const c = process.cpuUsage(c0);
    row.oursCpu.push((c.user + c.system) / 1000);
    row.duSize.push(await timeIt(() => spawnSync('du', ['-s', '-B1', set.dir])));
    row.duSizeCpu.push(timedShell(`du -s -B1 '${set.dir}' > /dev/null`, 'du').cpuMs);
    row.duInodes.push(await timeIt(() => spawnSync('du', ['-s', '--inodes', set.dir])));
    if (i < 3) row.fallback.push(await timeIt(() => diskUsage(set.dir, { fallback: true })));
  }
  const fb = await diskUsage(set.dir, { fallback: true });
  if (fb.size !== row.usage.size || fb.inodes !== row.usage.inodes) console.error(`!! fallback ${JSON.stringify(fb)} != shim on ${set.name}`);
  return row;
}

async function main(): Promise<void> {
  if (!tryLoadShim()) console.error('!! the shim is not built: "ours" uses the fast-glob fallback');
  const make: Record<string, () => DataSet> = {
    flat: () => smallFilesTree(0, 50_000), dirs: () => smallFilesTree(500, 100), generated: () => generatedTree(),
  };
  const rows: Row[] = [];
  for (const k of pick) if (make[k]) rows.push(await measure(make[k]!()));
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\ndiskUsage (containerd Usage), median of ${runs} warm runs (ms); fallback = our fast-glob scanner (median of 3); load average at the end ${load}\n`);
  const same = (r: Row) => (r.usage.size === r.du.size && r.usage.inodes === r.du.inodes ? ' (= du)' : ` (du ${r.du.size} B / ${r.du.inodes}!)`);
  console.log(table(
    ['tree', 'entries', 'bytes / inodes (ours = du)', 'ours', 'du -s -B1', 'du -s --inodes', 'du -B1 ÷ ours', 'du --inodes ÷ ours', 'CPU ours / du -B1', 'ours, fallback scanner'],
    rows.map((r) => [
      r.set.name, r.entries, `${r.usage.size} / ${r.usage.inodes}${same(r)}`,
      fmtMs(median(r.ours)), fmtMs(median(r.duSize)), fmtMs(median(r.duInodes)),
      ratio(median(r.duSize), median(r.ours)), ratio(median(r.duInodes), median(r.ours)),
      `${fmtMs(median(r.oursCpu))} / ${fmtMs(median(r.duSizeCpu))}`, fmtMs(median(r.fallback)),
    ]),
  ));
  console.log('');
  for (const r of rows) console.log(`${r.set.name}: ${r.set.note} (${r.set.dir})`);
}

await main();
