// changes: our native change list (upper dir + lookups into the lowers) and our naive one (two
// mounted trees compared in WASM) beside moby's Changes (always naive in 20.10: it mounts the
// layer and walks both trees), on (a) a ~100-entry upper and (b) an upper of 50k new files, each
// over a big base. Prints whether all three outputs are identical.
//   node dist/bench/changes.js [runs=5] [bases: debian,usr] [uppers: small,many]
// CPU = user + sys of every thread of this process during changesNative (the scans run on the pool);
// main / pool = CPU of the JS thread and of the libuv pool threads (the critical path).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { changesNative } from '../src/changes/native.js';
import { changesNaive } from '../src/changes/naive.js';
import type { Change } from '../src/changes/change.js';
import { loadShim } from '../src/native/shim.js';
import { MNT_DETACH, MS_RDONLY } from '../src/native/constants.js';
import { ensurePeer } from './lib/peers.js';
import { baselineModule } from './lib/baseline.js';
import { threadTimes, threadCpuSince, fmtThreads, type ThreadCpu } from './lib/thread-cpu.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { debianMinbase, systemUsr, countEntries, pickPaths, manyNewFilesUpper, MobyHome, DATA, type DataSet } from './lib/trees.js';

const runs = Math.max(3, Number(process.argv[2] ?? 5));
const pickBases = (process.argv[3] ?? 'debian,usr').split(',');
const pickUppers = (process.argv[4] ?? 'small,many').split(',');
// OVERLAY2_BASELINE=DIR: that build's changesNative too, interleaved (bench/lib/baseline.ts)
const baseline = await baselineModule<{ changesNative: typeof changesNative }>('src/changes/native.js');
const shim = loadShim();

function asLines(changes: Change[]): string {
  return changes.map((c) => `${c.kind} ${c.path}`).join('\n');
}

/** About 100 changes through the merged dir: adds, edits, chmods, deletes, an opaque re-creation. */
function hundredChanges(base: DataSet): (merged: string) => void {
  const files = pickPaths(base.dir, ['-type', 'f', '-size', '-64k', '-not', '-path', '*/proc*'], 40);
  const dirs = pickPaths(base.dir, ['-type', 'd', '-not', '-path', '*/proc*'], 20, 3);
  const smallDirs = pickPaths(base.dir, ['-type', 'd', '-links', '2', '-not', '-empty'], 2, 4);
  return (m) => {
    fs.mkdirSync(join(m, 'bench-new'));
    for (let i = 0; i < 40; i++) fs.writeFileSync(join(m, 'bench-new', `f${i}`), `new ${i}`);
    dirs.forEach((d, i) => fs.writeFileSync(join(m, d, `bench-added-${i}`), 'a'));
    files.slice(0, 10).forEach((f) => fs.appendFileSync(join(m, f), '\n# bench\n'));
    files.slice(10, 20).forEach((f) => fs.chmodSync(join(m, f), 0o600));
    files.slice(20, 30).forEach((f) => fs.rmSync(join(m, f), { force: true }));
    smallDirs.forEach((d) => fs.rmSync(join(m, d), { recursive: true, force: true }));
    if (smallDirs[0]) {
      fs.mkdirSync(join(m, smallDirs[0]));
      fs.writeFileSync(join(m, smallDirs[0], 'recreated'), 'r');
    }
  };
}

function viewMount(target: string, lowers: string[]): void {
  shim.mount('overlay', target, 'overlay', MS_RDONLY, `lowerdir=${lowers.join(':')},index=off,redirect_dir=off,metacopy=off`);
}

interface Row { base: string; baseEntries: number; upper: string; changes: number; native: number[]; nativeCpu: number[]; nativeThreads: ThreadCpu[]; baseline: number[]; baselineCpu: number[]; naive: number[]; moby: number[]; same: string }

async function measure(mobyBin: string | null, base: DataSet, upperName: string, layer: string, moby: MobyHome, baseEntries: number): Promise<Row> {
  const row: Row = { base: base.name, baseEntries, upper: upperName, changes: 0, native: [], nativeCpu: [], nativeThreads: [], baseline: [], baselineCpu: [], naive: [], moby: [], same: '' };
  const upper = moby.diffDir(layer);
  const lowers = [moby.diffDir('base')];
  const view = fs.mkdtempSync(join(DATA, 'view-'));
  let nativeOut = '', naiveOut = '', mobyOut = '';
  try {
    for (let i = 0; i < runs; i++) {
      const c0 = process.cpuUsage();
      const th0 = threadTimes();
      let t = performance.now();
      const n = await changesNative(upper, lowers, { userxattr: false });
      row.native.push(performance.now() - t);
      const c = process.cpuUsage(c0);
      row.nativeCpu.push((c.user + c.system) / 1000);
      row.nativeThreads.push(threadCpuSince(th0));
      if (baseline) {
        const b0 = process.cpuUsage();
        const bt = performance.now();
        const b = await baseline.changesNative(upper, lowers, { userxattr: false });
        row.baseline.push(performance.now() - bt);
        const bc = process.cpuUsage(b0);
        row.baselineCpu.push((bc.user + bc.system) / 1000);
        if (asLines(b) !== asLines(n)) console.error('!! the baseline build lists other changes');
      }
      nativeOut = asLines(n);
      row.changes = n.length;
      // naive as the driver runs it: mount a view of the layer; the parent (one layer) is its diff dir
      t = performance.now();
      viewMount(view, [upper, ...lowers]);
      try {
        naiveOut = asLines(await changesNaive(view, lowers[0]!));
      } finally {
        shim.umount2(view, MNT_DETACH);
      }
      row.naive.push(performance.now() - t);
      if (mobyBin) {
        const r = moby.run(['changes', layer, 'base']);
        row.moby.push(r.opMs);
        mobyOut = r.out.trimEnd();
      }
    }
  } finally {
    fs.rmSync(view, { recursive: true, force: true });
  }
  const same = nativeOut === naiveOut && (!mobyBin || naiveOut === mobyOut);
  row.same = same ? 'yes' : `NO (native${nativeOut === naiveOut ? '' : '≠naive'}${mobyBin && naiveOut !== mobyOut ? ' naive≠moby' : ''})`;
  if (!same) {
    fs.writeFileSync(join(DATA, `mismatch-${upperName}-native.txt`), nativeOut + '\n');
    fs.writeFileSync(join(DATA, `mismatch-${upperName}-naive.txt`), naiveOut + '\n');
    fs.writeFileSync(join(DATA, `mismatch-${upperName}-moby.txt`), mobyOut + '\n');
  }
  return row;
}

/** The thread split of the run with the median wall time. */
function medianThreads(ms: number[], threads: ThreadCpu[]): string {
  const order = ms.map((m, i) => [m, i] as const).sort((a, b) => a[0] - b[0]);
  return threads.length ? fmtThreads(threads[order[Math.floor(order.length / 2)]![1]]!) : '—';
}

async function main(): Promise<void> {
  const mobyBin = ensurePeer('moby-ovl');
  if (!mobyBin) {
    console.log('peer not built: moby-ovl — only ours is measured');
    return;
  }
  const bases = [pickBases.includes('debian') ? debianMinbase() : null, pickBases.includes('usr') ? systemUsr() : null]
    .filter((b): b is DataSet => b !== null);
  const rows: Row[] = [];
  for (const base of bases) {
    const moby = new MobyHome(mobyBin, 'changes');
    try {
      const baseEntries = countEntries(base.dir);
      moby.create('base', null, base.dir, true);
      if (pickUppers.includes('small')) {
        moby.create('small', 'base');
        moby.edit('small', hundredChanges(base));
        rows.push(await measure(mobyBin, base, '~100 entries', 'small', moby, baseEntries));
      }
      if (pickUppers.includes('many')) {
        moby.createAdopting('many', 'base', manyNewFilesUpper(base));
        rows.push(await measure(mobyBin, base, '50k new files', 'many', moby, baseEntries));
      }
    } finally {
      moby.dispose();
    }
    execFileSync('sync');
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\nchanges, median of ${runs} warm runs (ms); "same" = native, naive and moby print identical sorted lists; load average at the end ${load}\n`);
  console.log(table(
    ['base', 'base entries', 'upper', 'changes', 'ours native', 'CPU native', 'native: main / other threads (busiest) CPU', 'ours naive', 'moby Changes', 'moby ÷ native', 'moby ÷ naive', 'same'],
    rows.map((r) => [r.base, r.baseEntries, r.upper, r.changes, fmtMs(median(r.native)), fmtMs(median(r.nativeCpu)), medianThreads(r.native, r.nativeThreads), fmtMs(median(r.naive)),
      fmtMs(median(r.moby)), ratio(median(r.moby), median(r.native)), ratio(median(r.moby), median(r.naive)), r.same]),
  ));
  if (baseline) {
    console.log(`\nthe same runs, baseline build ${process.env.OVERLAY2_BASELINE}'s changesNative (interleaved):\n`);
    console.log(table(['base', 'upper', 'baseline native', 'ours native', 'baseline ÷ ours', 'moby ÷ baseline', 'CPU baseline / ours'], rows.map((r) => [
      r.base, r.upper, fmtMs(median(r.baseline)), fmtMs(median(r.native)), ratio(median(r.baseline), median(r.native)),
      ratio(median(r.moby), median(r.baseline)), `${fmtMs(median(r.baselineCpu))} / ${fmtMs(median(r.nativeCpu))}`,
    ])));
  }
}

await main();
