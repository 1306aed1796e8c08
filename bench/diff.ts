// diff (export) throughput: exportLayer → counting sink, beside GNU tar and moby's own overlay2
// Diff on the same upper dirs, interleaved in one run, median of several runs.
//   npm run build:ts && node dist/bench/diff.js [runs=7] [small,large]
// Data (generated once into bench/.data/diff, a moby-ovl home): (a) 50k files of 1–4 KiB in 100
// dirs, (b) 3 × 300 MiB files. Both are layers over an empty base, so moby takes its native path.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { exportLayer } from '../src/export/export.js';
import { IdMappings } from '../src/idmap.js';
import { fillSmallFiles, fillLargeFiles } from './lib/trees.js';
import { timedShell, type Timing } from './lib/shell.js';
import { ensurePeer, runPeer } from './lib/peers.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';
import { baselineModule } from './lib/baseline.js';
import { threadTimes, threadCpuSince, fmtThreads, type ThreadCpu } from './lib/thread-cpu.js';

const runs = Number(process.argv[2] ?? 7);
// OVERLAY2_BASELINE=DIR: that build's exportLayer too, interleaved, its bytes compared (bench/lib/baseline.ts)
const baseline = await baselineModule<{ exportLayer: typeof exportLayer }>('src/export/export.js');
const home = join(process.cwd(), 'bench', '.data', 'diff');
const MiB = 1 << 20;

interface DataSet { id: string; title: string; entries: number; bytes: number }

const ALL_SETS: DataSet[] = [
  { id: 'small', title: '50k files of 1–4 KiB', entries: 0, bytes: 0 },
  { id: 'large', title: '3 × 300 MiB files', entries: 0, bytes: 0 },
];
// the sets to time (all by default); both are generated either way
const picked = process.argv[3]?.split(',');
const SETS = picked ? ALL_SETS.filter((s) => picked.includes(s.id)) : ALL_SETS;
if (SETS.length === 0) throw new Error(`no data set among ${process.argv[3]} (small, large)`);

const fillSmall = (dir: string) => fillSmallFiles(dir, 12345);

const fillLarge = fillLargeFiles;

function prepare(moby: string): void {
  const done = join(home, '.complete');
  if (!fs.existsSync(done)) {
    fs.rmSync(home, { recursive: true, force: true });
    fs.mkdirSync(home, { recursive: true });
    const ok = (args: string[]) => {
      const r = runPeer(moby, home, args);
      if (r.code !== 0) throw new Error(`moby-ovl ${args.join(' ')}: ${r.err}`);
    };
    ok(['create', 'base', '-']);
    for (const s of ALL_SETS) ok(['create', s.id, 'base']);
    console.error('generating bench/.data/diff (once) ...');
    fillSmall(join(home, 'small', 'diff'));
    fillLarge(join(home, 'large', 'diff'));
    fs.writeFileSync(done, '');
  }
  for (const s of SETS) {
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        s.entries++;
        if (e.isDirectory()) walk(join(d, e.name));
        else s.bytes += fs.lstatSync(join(d, e.name)).size;
      }
    };
    walk(join(home, s.id, 'diff'));
  }
}


async function ours(dir: string, build: { exportLayer: typeof exportLayer } = { exportLayer }, hash?: Hash): Promise<Timing & { bytes: number; threads: ThreadCpu }> {
  const t0 = performance.now();
  const th0 = threadTimes();
  const c0 = process.cpuUsage(); // every thread of the process: the scan runs on the libuv pool
  let bytes = 0;
  for await (const c of build.exportLayer(dir, { userxattr: false, idMappings: new IdMappings() })) {
    bytes += (c as Buffer).length;
    hash?.update(c as Buffer);
  }
  const cpu = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, bytes, threads: threadCpuSince(th0) };
}

/** The thread split of the run with the median wall time. */
function medianThreads(ts: Array<Timing & { threads: ThreadCpu }>): string {
  if (ts.length === 0) return '—';
  const sorted = [...ts].sort((a, b) => a.ms - b.ms);
  return fmtThreads(sorted[Math.floor(sorted.length / 2)]!.threads);
}

function gnuTar(dir: string): Timing {
  // tar notices a direct /dev/null and skips reading file data: pipe through cat instead.
  return timedShell(`tar -cf - -C '${dir}' . | cat > /dev/null`, 'tar');
}

function mobyDiff(moby: string, id: string): number {
  const devNull = fs.openSync('/dev/null', 'w');
  try {
    const r = spawnSync(moby, ['--home', home, 'diff', id, 'base'], { stdio: ['ignore', devNull, 'pipe'] });
    const op = /op=([0-9.]+)ms/.exec(r.stderr?.toString() ?? '');
    if (r.status !== 0 || !op) throw new Error(`moby-ovl diff ${id}: ${r.stderr}`);
    return Number(op[1]);
  } finally {
    fs.closeSync(devNull);
  }
}

async function main(): Promise<void> {
  const moby = ensurePeer('moby-ovl');
  if (!moby) throw new Error('moby-ovl not found (build it with ../shared/peers/build.sh)');
  prepare(moby);
  const times = new Map<string, { ours: Array<Timing & { threads: ThreadCpu }>; tar: Timing[]; moby: number[]; base: Array<Timing & { threads: ThreadCpu }>; bytes: number }>();
  for (const s of SETS) times.set(s.id, { ours: [], tar: [], moby: [], base: [], bytes: 0 });
  // one warm-up round so every contender reads from the page cache
  for (const s of SETS) {
    const dir = join(home, s.id, 'diff');
    const h = createHash('sha256');
    await ours(dir, { exportLayer }, h);
    if (baseline) {
      const hb = createHash('sha256');
      await ours(dir, baseline, hb);
      console.error(`${s.id}: tar bytes ${h.digest('hex') === hb.digest('hex') ? 'identical to' : 'DIFFER from'} the baseline build's`);
    }
    gnuTar(dir);
    mobyDiff(moby, s.id);
  }
  for (let r = 0; r < runs; r++) {
    for (const s of SETS) {
      const dir = join(home, s.id, 'diff');
      const t = times.get(s.id)!;
      const o = await ours(dir);
      t.ours.push(o);
      t.bytes = o.bytes;
      t.tar.push(gnuTar(dir));
      t.moby.push(mobyDiff(moby, s.id));
      if (baseline) t.base.push(await ours(dir, baseline));
    }
  }
  const rows: (string | number)[][] = [];
  for (const s of SETS) {
    const t = times.get(s.id)!;
    const [o, g, m] = [median(t.ours.map((x) => x.ms)), median(t.tar.map((x) => x.ms)), median(t.moby)];
    const [oc, gc] = [median(t.ours.map((x) => x.cpuMs)), median(t.tar.map((x) => x.cpuMs))];
    const per = (ms: number) => `${Math.round(s.entries / (ms / 1000)).toLocaleString('en-US')} e/s, ${(t.bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
    rows.push([s.title, `${fmtMs(o)} ms (${per(o)})`, `${fmtMs(g)} ms`, `${fmtMs(m)} ms`, ratio(g, o), ratio(m, o), `${fmtMs(oc)} / ${fmtMs(gc)} ms`, medianThreads(t.ours)]);
  }
  console.log(`diff (export), median of ${runs} interleaved runs; ${SETS.map((s) => `${s.id}: ${s.entries} entries, ${(times.get(s.id)!.bytes / MiB).toFixed(0)} MiB tar`).join('; ')}`);
  console.log(table(['layer', 'exportLayer → counting sink', 'GNU tar | cat', 'moby-ovl diff (op)', 'tar/ours', 'moby/ours', 'CPU ours / tar+cat', 'ours: main / other threads (busiest) CPU ms'], rows));
  if (baseline) {
    console.log(`\nthe same runs, baseline build ${process.env.OVERLAY2_BASELINE}'s exportLayer (interleaved):`);
    console.log(table(['layer', 'baseline', 'ours', 'baseline ÷ ours', 'tar ÷ baseline', 'CPU baseline / ours', 'baseline: main / other threads (busiest) CPU ms'], SETS.map((s) => {
      const t = times.get(s.id)!;
      const [b, o, g] = [median(t.base.map((x) => x.ms)), median(t.ours.map((x) => x.ms)), median(t.tar.map((x) => x.ms))];
      return [s.title, `${fmtMs(b)} ms`, `${fmtMs(o)} ms`, ratio(b, o), ratio(g, b), `${fmtMs(median(t.base.map((x) => x.cpuMs)))} / ${fmtMs(median(t.ours.map((x) => x.cpuMs)))} ms`, medianThreads(t.base)];
    })));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
