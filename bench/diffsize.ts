// diffSize: our directorySize (streaming scanner → WASM) beside GNU `du -sb` and moby's DiffSize
// (directory.Size over the layer's diff dir) on the same trees, warm cache, median of N runs; CPU
// time (user + sys, every thread) beside wall time, and the peak RSS (VmHWM) of a process doing one
// diffSize beside du's; the main thread's and the libuv pool threads' CPU (the critical path).
//   node dist/bench/diffsize.js [runs=7] [sets: flat,dirs,generated,debian,usr,large — default all]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { directorySize } from '../src/size/directory-size.js';
import { withCore } from '../src/core/wasm.js';
import { scanStream } from '../src/scan/stream.js';
import { tryLoadShim } from '../src/native/shim.js';
import { ensurePeer } from './lib/peers.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { timedShell } from './lib/shell.js';
import { peakRss } from './lib/peak-rss.js';
import { baselineModule } from './lib/baseline.js';
import { threadTimes, threadCpuSince, fmtThreads, type ThreadCpu } from './lib/thread-cpu.js';
import { generatedTree, debianMinbase, systemUsr, smallFilesTree, largeFilesTree, countEntries, MobyHome, type DataSet } from './lib/trees.js';

// `--one DIR`: one diffSize in this process, then its size and peak RSS as JSON (for peakRss)
if (process.argv[2] === '--one') {
  const size = await directorySize(process.argv[3]!);
  const hwm = /^VmHWM:\s*(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  console.log(JSON.stringify({ size, hwmKiB: Number(hwm) }));
  process.exit(0);
}

const runs = Math.max(5, Number(process.argv[2] ?? 7));
const pick = (process.argv[3] ?? 'flat,dirs,generated,debian,usr,large').split(',');
// OVERLAY2_BASELINE=DIR: that build's directorySize too, interleaved (bench/lib/baseline.ts)
const baseline = await baselineModule<{ directorySize(dir: string): Promise<number> }>('src/size/directory-size.js');

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

interface Row {
  set: DataSet; entries: number; ours: number[]; fallback: number[]; du: number[]; moby: number[]; size: number; mobySize: number;
  oursCpu: number[]; duCpu: number[]; oursRssMiB: number; duRssMiB: number; base: number[]; baseCpu: number[];
  oursThreads: ThreadCpu[]; baseThreads: ThreadCpu[];
}

async function cpuTimeIt(fn: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number; threads: ThreadCpu }> {
  const c0 = process.cpuUsage(); // every thread of the process: the scans run on the libuv pool
  const t0 = threadTimes();
  const ms = await timeIt(fn);
  const c = process.cpuUsage(c0);
  return { ms, cpuMs: (c.user + c.system) / 1000, threads: threadCpuSince(t0) };
}

/** The run with the median wall time's thread split. */
function medianThreads(ms: number[], threads: ThreadCpu[]): string {
  if (threads.length === 0) return '—';
  const order = ms.map((m, i) => [m, i] as const).sort((a, b) => a[0] - b[0]);
  return fmtThreads(threads[order[Math.floor(order.length / 2)]![1]]!);
}

async function measure(set: DataSet, mobyBin: string | null): Promise<Row> {
  const row: Row = {
    set, entries: countEntries(set.dir), ours: [], fallback: [], du: [], moby: [], size: NaN, mobySize: NaN,
    oursCpu: [], duCpu: [], oursRssMiB: NaN, duRssMiB: NaN, base: [], baseCpu: [], oursThreads: [], baseThreads: [],
  };
  let moby: MobyHome | null = null;
  if (mobyBin) {
    moby = new MobyHome(mobyBin, 'size');
    moby.create('layer', null, set.dir, true);
  }
  try {
    // warm the page cache and the JIT once, then interleave the contenders run by run
    row.size = await directorySize(set.dir);
    if (baseline && await baseline.directorySize(set.dir) !== row.size) console.error(`!! baseline size differs on ${set.name}`);
    spawnSync('du', ['-sb', set.dir]);
    for (let i = 0; i < runs; i++) {
      const o = await cpuTimeIt(() => directorySize(set.dir));
      row.ours.push(o.ms);
      row.oursCpu.push(o.cpuMs);
      row.oursThreads.push(o.threads);
      row.du.push(await timeIt(() => spawnSync('du', ['-sb', set.dir])));
      row.duCpu.push(timedShell(`du -sb '${set.dir}' > /dev/null`, 'du').cpuMs);
      if (baseline) {
        const b = await cpuTimeIt(() => baseline.directorySize(set.dir));
        row.base.push(b.ms);
        row.baseCpu.push(b.cpuMs);
        row.baseThreads.push(b.threads);
      }
      if (moby) {
        const r = moby.run(['diffsize', 'layer', '-']);
        row.moby.push(r.opMs);
        row.mobySize = Number(r.out.trim());
      }
      if (i < 3) row.fallback.push(await timeIt(() => fallbackSize(set.dir)));
    }
    const one = await peakRss(process.execPath, [process.argv[1]!, '--one', set.dir]);
    const report = JSON.parse(one.stdout) as { size: number; hwmKiB: number };
    row.oursRssMiB = report.hwmKiB / 1024; // the process's own VmHWM at its end (the sampler's can catch a stranger)
    if (report.size !== row.size) console.error(`!! --one size differs on ${set.name}`);
    row.duRssMiB = (await peakRss('du', ['-sb', set.dir])).selfMiB;
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
  const make: Record<string, () => DataSet | null> = {
    flat: () => smallFilesTree(0, 50_000), dirs: () => smallFilesTree(500, 100), generated: () => generatedTree(),
    debian: () => debianMinbase(), usr: () => systemUsr(), large: () => largeFilesTree(),
  };
  const sets = pick.map((k) => make[k]?.() ?? null).filter((s): s is DataSet => s !== null);
  const rows: Row[] = [];
  for (const set of sets) rows.push(await measure(set, mobyBin));
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\ndiffSize, median of ${runs} warm runs (ms); fallback = our fast-glob scanner (median of 3); load average at the end ${load}\n`);
  console.log(table(
    ['tree', 'entries', 'bytes (ours = moby)', 'ours', 'du -sb', 'moby DiffSize', 'du ÷ ours', 'moby ÷ ours', 'CPU ours / du', 'ours: main / other threads (busiest) CPU', 'peak RSS ours / du (MiB)', 'ours, fallback scanner'],
    rows.map((r) => [
      r.set.name, r.entries, `${r.size}${Number.isNaN(r.mobySize) ? '' : r.mobySize === r.size ? ' (=)' : ` (moby ${r.mobySize}!)`}`,
      fmtMs(median(r.ours)), fmtMs(median(r.du)), fmtMs(median(r.moby)),
      ratio(median(r.du), median(r.ours)), ratio(median(r.moby), median(r.ours)),
      `${fmtMs(median(r.oursCpu))} / ${fmtMs(median(r.duCpu))}`, medianThreads(r.ours, r.oursThreads), `${r.oursRssMiB.toFixed(1)} / ${r.duRssMiB.toFixed(1)}`,
      fmtMs(median(r.fallback)),
    ]),
  ));
  if (baseline) {
    console.log(`\nthe same runs, baseline build ${process.env.OVERLAY2_BASELINE} (interleaved with ours and du):\n`);
    console.log(table(['tree', 'baseline', 'ours', 'baseline ÷ ours', 'du ÷ baseline', 'CPU baseline / ours', 'baseline: main / other threads (busiest) CPU'], rows.map((r) => [
      r.set.name, fmtMs(median(r.base)), fmtMs(median(r.ours)), ratio(median(r.base), median(r.ours)), ratio(median(r.du), median(r.base)),
      `${fmtMs(median(r.baseCpu))} / ${fmtMs(median(r.oursCpu))}`, medianThreads(r.base, r.baseThreads),
    ])));
  }
  console.log('');
  for (const r of rows) console.log(`${r.set.name}: ${r.set.note} (${r.set.dir})`);
}

await main();
