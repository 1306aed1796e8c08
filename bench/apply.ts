// applyDiff (import) throughput: applyLayer beside GNU `tar -xf` and moby's own overlay2 ApplyDiff on
// the same tar files, interleaved in one run, median of several runs.
//   npm run build:ts && node dist/bench/apply.js [runs=5] [sets=small,large,rootfs]
//   OVERLAY2_BASELINE=DIR (another built checkout, bench/lib/baseline.ts) adds that build's applyLayer
//   (e.g. main before a change) as one more contender, and checks both write the same tree.
// Data (generated once into bench/.data/apply): (a) 50k files of 1–4 KiB in 100 dirs, (b) 3 × 300 MiB
// files, (c) a Debian bookworm minbase rootfs (bench/.data/debian-bookworm-minbase, made by
// `debootstrap --variant=minbase bookworm`; skipped when absent).
// Every measurement writes into a FRESH ext4 (a loop-mounted image made with mkfs just before, and
// unmounted after): on the shared disk, ext4's inode allocator crawls for minutes after anyone
// deletes many files (recently_deleted() in the profile; 50k files took 8–33 s there against 1.3 s
// on a fresh fs), which would measure the other tenants, not the contenders. Extra lines: parse-only
// speed of our reader vs tar-stream, and what `sync: true` (one syncfs before the swap) costs.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PassThrough, Readable } from 'node:stream';
import { execFileSync, spawnSync } from 'node:child_process';
import tarStream from 'tar-stream';
import { applyLayer } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { TarReader } from '../src/tar/reader.js';
import { fillSmallFiles, fillLargeFiles } from './lib/trees.js';
import { timedShell, type Timing } from './lib/shell.js';
import { ensurePeer } from './lib/peers.js';
import { fmtMs, median, ratio, table } from './lib/stats.js';
import { mountFreshExt4 } from './lib/fresh-ext4.js';
import { treeDigest } from '../test/support/tree-digest.js';
import { threadTimes, threadCpuSince } from './lib/thread-cpu.js';
import { baselineModule } from './lib/baseline.js';
import { peakRss } from './lib/peak-rss.js';

const runs = Number(process.argv[2] ?? 5);
const only = process.argv[3]?.split(',');
const data = join(process.cwd(), 'bench', '.data', 'apply');
const work = join(data, 'work');
const rootfsSrc = join(process.cwd(), 'bench', '.data', 'debian-bookworm-minbase');
const MiB = 1 << 20;

interface DataSet { id: string; title: string; tar: string; entries: number; bytes: number }

const fillSmall = (dir: string) => fillSmallFiles(dir, 4242);

const fillLarge = fillLargeFiles;

/** Builds the tar once (from a generated tree, then removed); counts entries and content bytes. */
function prepare(id: string, title: string, make: ((dir: string) => void) | string): DataSet | null {
  const tar = join(data, `${id}.tar`);
  if (!fs.existsSync(tar)) {
    let src: string;
    if (typeof make === 'string') {
      if (!fs.existsSync(make)) return null;
      src = make;
    } else {
      src = join(data, `${id}-src`);
      fs.rmSync(src, { recursive: true, force: true });
      fs.mkdirSync(src, { recursive: true });
      console.error(`generating ${id} (once) ...`);
      make(src);
    }
    // GNU tar's default format, like Docker's layers: PAX headers only where a name or value needs one
    execFileSync('tar', ['--numeric-owner', '-C', src, '-cf', `${tar}.part`, '.']);
    fs.renameSync(`${tar}.part`, tar);
    if (typeof make !== 'string') fs.rmSync(src, { recursive: true, force: true });
  }
  let entries = 0, bytes = 0;
  const r = new TarReader({ entry() { entries++; }, data(_b, s, t) { bytes += t - s; }, end() {} });
  const fd = fs.openSync(tar, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) r.push(buf.subarray(0, n));
  fs.closeSync(fd);
  r.finish();
  return { id, title, tar, entries, bytes };
}

const opts = { userxattr: false, idMappings: new IdMappings() };
type ApplyLayer = typeof applyLayer;
const baseline: ApplyLayer | null = (await baselineModule<{ applyLayer: ApplyLayer }>('src/apply/apply.js'))?.applyLayer ?? null;
delete process.env.OVERLAY2_BASELINE; // the peak-RSS child (apply-one.js) must run this build
/** Round 0 leaves each contender's tree digest here (not timed). */
const digests = new Map<string, string>();
interface OursTiming extends Timing { mainCpuMs: number; otherCpuMs: number }
let seq = 0;
/** Runs `fn` with a fresh ext4 mounted at `work`; creating and unmounting it are not timed. */
async function onFreshFs<T>(fn: () => Promise<T> | T): Promise<T> {
  const fresh = mountFreshExt4(work, 3, 'disk');
  try {
    execFileSync('sync');
    return await fn();
  } finally {
    fresh.remove();
  }
}


/** ours: applyLayer on fs.createReadStream(tar) (read directly, see src/tar/input.ts); piped: the
 *  same through a PassThrough, i.e. the 64 KiB chunks of an ordinary stream (a pipe, a decoder). */
async function ours(set: DataSet, sync = false, piped = false, digestAs = '', impl: ApplyLayer = applyLayer): Promise<OursTiming> {
  const layer = join(work, `ours-${seq++}`);
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  const input = piped ? fs.createReadStream(set.tar).pipe(new PassThrough()) : fs.createReadStream(set.tar);
  const c0 = process.cpuUsage();
  const th0 = threadTimes();
  const t0 = performance.now();
  await impl(layer, input, { ...opts, sync });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const th = threadCpuSince(th0);
  if (digestAs) digests.set(digestAs, treeDigest(join(layer, 'diff')));
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, mainCpuMs: th.mainMs, otherCpuMs: th.poolMs };
}

function gnuTar(set: DataSet, digestAs = ''): Timing {
  const dir = join(work, `tar-${seq++}`);
  fs.mkdirSync(dir, { recursive: true });
  const t = timedShell(`tar -xf '${set.tar}' -C '${dir}'`, 'tar');
  if (digestAs) digests.set(digestAs, treeDigest(dir));
  return t;
}

/** Peak RSS (VmHWM) of a process doing one applyLayer of the set, and its CPU by thread. */
async function oursPeak(set: DataSet): Promise<{ hwmMiB: number; mainCpuMs: number; otherCpuMs: number; ms: number }> {
  return onFreshFs(async () => {
    const layer = join(work, `rss-${seq++}`);
    fs.mkdirSync(join(layer, 'diff'), { recursive: true });
    const r = await peakRss(process.execPath, [new URL('./apply-one.js', import.meta.url).pathname, set.tar, layer]);
    if (r.exitCode !== 0) throw new Error(`apply-one ${set.id} failed`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; mainCpuMs: number; otherCpuMs: number };
    return { hwmMiB: r.selfMiB, mainCpuMs: out.mainCpuMs, otherCpuMs: out.otherCpuMs, ms: out.ms };
  });
}

function mobyApply(moby: string, set: DataSet): number {
  const home = join(work, 'moby-home');
  const id = `layer${seq++}`;
  const run = (args: string[], stdin: number | 'ignore' = 'ignore') => {
    const r = spawnSync(moby, ['--home', home, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`moby-ovl ${args.join(' ')}: ${r.stderr}`);
    return r.stderr.toString();
  };
  run(['create', id, '-']);
  execFileSync('sync');
  const fd = fs.openSync(set.tar, 'r');
  try {
    const op = /op=([0-9.]+)ms/.exec(run(['apply', id, '-'], fd));
    if (!op) throw new Error('moby-ovl apply: no op= time');
    return Number(op[1]);
  } finally {
    fs.closeSync(fd);
  }
}

/** Parse-only: our reader vs tar-stream over the same in-memory chunks (64 KiB, like a pipe). */
async function parseOnly(set: DataSet): Promise<{ oursMs: number; tsMs: number }> {
  const buf = fs.readFileSync(set.tar);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 64 * 1024) chunks.push(buf.subarray(i, i + 64 * 1024));
  const o: number[] = [], t: number[] = [];
  for (let r = 0; r < 5; r++) {
    let t0 = performance.now();
    const reader = new TarReader({ entry() {}, data() {}, end() {} });
    for (const c of chunks) reader.push(c);
    reader.finish();
    o.push(performance.now() - t0);
    t0 = performance.now();
    const ex = tarStream.extract();
    await new Promise<void>((resolve, reject) => {
      ex.on('entry', (_h, stream, next) => { stream.on('end', next); stream.resume(); });
      ex.on('finish', resolve);
      ex.on('error', reject);
      Readable.from(chunks).pipe(ex);
    });
    t.push(performance.now() - t0);
  }
  return { oursMs: median(o), tsMs: median(t) };
}

async function main(): Promise<void> {
  const moby = ensurePeer('moby-ovl');
  if (!moby) throw new Error('moby-ovl not found (build it with ../shared/peers/build.sh)');
  fs.mkdirSync(data, { recursive: true });
  const sets = [
    prepare('small', '50k files of 1–4 KiB', fillSmall),
    prepare('large', '3 × 300 MiB files', fillLarge),
    prepare('rootfs', 'Debian bookworm minbase rootfs', rootfsSrc),
  ].filter((s): s is DataSet => s !== null && (!only || only.includes(s.id)));

  const times = new Map<string, { ours: OursTiming[]; tar: Timing[]; moby: number[]; synced: number[]; piped: number[]; base: OursTiming[] }>();
  for (const s of sets) times.set(s.id, { ours: [], tar: [], moby: [], synced: [], piped: [], base: [] });
  const contenders = baseline ? 6 : 5;
  for (let r = 0; r < runs; r++) {
    for (const s of sets) {
      const t = times.get(s.id)!;
      // rotate who goes first, so no contender always follows the same neighbour
      const order = Array.from({ length: contenders }, (_, i) => (i + r) % contenders);
      const dg = (who: string) => (r === 0 ? `${s.id}:${who}` : '');
      for (const who of order) {
        await onFreshFs(async () => {
          if (who === 0) t.ours.push(await ours(s, false, false, dg('ours')));
          else if (who === 1) t.tar.push(gnuTar(s, dg('tar')));
          else if (who === 2) t.moby.push(mobyApply(moby, s));
          else if (who === 3) t.synced.push((await ours(s, true)).ms);
          else if (who === 4) t.piped.push((await ours(s, false, true)).ms);
          else t.base.push(await ours(s, false, false, dg('baseline'), baseline!));
        });
      }
      const o = t.ours.at(-1)!;
      console.error(`run ${r + 1}/${runs} ${s.id}: ours ${fmtMs(o.ms)} (CPU main ${o.mainCpuMs.toFixed(0)} / other threads ${o.otherCpuMs.toFixed(0)} ms) tar ${fmtMs(t.tar.at(-1)!.ms)} moby ${fmtMs(t.moby.at(-1)!)} ours+sync ${fmtMs(t.synced.at(-1)!)} ours piped ${fmtMs(t.piped.at(-1)!)}${baseline ? ` baseline ${fmtMs(t.base.at(-1)!.ms)}` : ''}`);
      if (r === 0) {
        const d = (w: string) => digests.get(`${s.id}:${w}`);
        console.error(`  tree digest ${s.id}: ours ${d('ours')?.slice(0, 16)} tar ${d('tar')?.slice(0, 16)} (${d('ours') === d('tar') ? 'same' : 'DIFFERENT'})` +
          (baseline ? ` baseline ${d('baseline')?.slice(0, 16)} (${d('ours') === d('baseline') ? 'same' : 'DIFFERENT'})` : ''));
      }
    }
  }
  fs.rmSync(work, { recursive: true, force: true });

  const rows: (string | number)[][] = [];
  for (const s of sets) {
    const t = times.get(s.id)!;
    const [o, g, m, sy, pp] = [median(t.ours.map((x) => x.ms)), median(t.tar.map((x) => x.ms)), median(t.moby), median(t.synced), median(t.piped)];
    const [oc, gc] = [median(t.ours.map((x) => x.cpuMs)), median(t.tar.map((x) => x.cpuMs))];
    const per = (ms: number) => `${Math.round(s.entries / (ms / 1000)).toLocaleString('en-US')} e/s, ${(s.bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
    const [om, ot] = [median(t.ours.map((x) => x.mainCpuMs)), median(t.ours.map((x) => x.otherCpuMs))];
    const row = [s.title, `${fmtMs(o)} ms (${per(o)})`, `${fmtMs(g)} ms`, `${fmtMs(m)} ms`, ratio(g, o), ratio(m, o), `${fmtMs(pp)} ms (${ratio(m, pp)})`, `${fmtMs(sy)} ms`, `${fmtMs(oc)} / ${fmtMs(gc)} ms`, `${fmtMs(om)} / ${fmtMs(ot)} ms`];
    if (baseline) {
      const b = median(t.base.map((x) => x.ms));
      row.push(`${fmtMs(b)} ms (${ratio(b, o)})`);
    }
    rows.push(row);
  }
  console.log(`applyDiff (import), median of ${runs} interleaved runs; ${sets.map((s) => `${s.id}: ${s.entries} entries, ${(s.bytes / MiB).toFixed(0)} MiB content`).join('; ')}`);
  console.log(table(['layer', 'applyLayer', 'GNU tar -xf', 'moby-ovl apply (op)', 'tar/ours', 'moby/ours', 'ours, piped (moby/piped)', 'ours, sync:true', 'CPU ours / tar',
    'CPU ours: main / other threads', ...(baseline ? ['baseline (baseline/ours)'] : [])], rows));
  for (const s of sets) {
    const d = (w: string) => digests.get(`${s.id}:${w}`);
    console.log(`tree digest ${s.id}: ours ${d('ours') === d('tar') ? '=' : '≠'} GNU tar${baseline ? `, ours ${d('ours') === d('baseline') ? '=' : '≠'} baseline` : ''} (${d('ours')})`);
  }
  for (const s of sets) {
    const p = await oursPeak(s);
    console.log(`peak RSS, one applyLayer of ${s.id} in its own process: ${p.hwmMiB.toFixed(1)} MiB (VmHWM; ${fmtMs(p.ms)} ms, CPU main ${p.mainCpuMs.toFixed(0)} / other threads ${p.otherCpuMs.toFixed(0)} ms)`);
  }
  const small = sets.find((s) => s.id === 'small');
  if (small) {
    const p = await parseOnly(small);
    console.log(`parse only (${small.id}.tar in memory, 64 KiB chunks, median of 5): TarReader ${fmtMs(p.oursMs)} ms, tar-stream ${fmtMs(p.tsMs)} ms (${ratio(p.tsMs, p.oursMs)})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
