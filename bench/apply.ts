// applyDiff (import) throughput: applyLayer beside GNU `tar -xf` and moby's own overlay2 ApplyDiff on
// the same tar files, interleaved in one run, median of several runs.
//   npm run build:ts && node dist/bench/apply.js [runs=5] [sets=small,large,rootfs]
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
let seq = 0;
const image = join(data, 'fresh.img');

/** Runs `fn` with a fresh ext4 mounted at `work`; creating and unmounting it are not timed. */
async function onFreshFs<T>(fn: () => Promise<T> | T): Promise<T> {
  fs.mkdirSync(work, { recursive: true });
  fs.rmSync(image, { force: true });
  execFileSync('truncate', ['-s', '3G', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  execFileSync('mount', ['-o', 'loop', image, work]);
  try {
    execFileSync('sync');
    return await fn();
  } finally {
    execFileSync('umount', [work]);
    fs.rmSync(image, { force: true });
  }
}


/** ours: applyLayer on fs.createReadStream(tar) (read directly, see src/tar/input.ts); piped: the
 *  same through a PassThrough, i.e. the 64 KiB chunks of an ordinary stream (a pipe, a decoder). */
async function ours(set: DataSet, sync = false, piped = false): Promise<Timing> {
  const layer = join(work, `ours-${seq++}`);
  fs.mkdirSync(join(layer, 'diff'), { recursive: true });
  const input = piped ? fs.createReadStream(set.tar).pipe(new PassThrough()) : fs.createReadStream(set.tar);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await applyLayer(layer, input, { ...opts, sync });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

function gnuTar(set: DataSet): Timing {
  const dir = join(work, `tar-${seq++}`);
  fs.mkdirSync(dir, { recursive: true });
  return timedShell(`tar -xf '${set.tar}' -C '${dir}'`, 'tar');
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

  const times = new Map<string, { ours: Timing[]; tar: Timing[]; moby: number[]; synced: number[]; piped: number[] }>();
  for (const s of sets) times.set(s.id, { ours: [], tar: [], moby: [], synced: [], piped: [] });
  for (let r = 0; r < runs; r++) {
    for (const s of sets) {
      const t = times.get(s.id)!;
      // rotate who goes first, so no contender always follows the same neighbour
      const order = [0, 1, 2, 3, 4].map((i) => (i + r) % 5);
      for (const who of order) {
        await onFreshFs(async () => {
          if (who === 0) t.ours.push(await ours(s));
          else if (who === 1) t.tar.push(gnuTar(s));
          else if (who === 2) t.moby.push(mobyApply(moby, s));
          else if (who === 3) t.synced.push((await ours(s, true)).ms);
          else t.piped.push((await ours(s, false, true)).ms);
        });
      }
      console.error(`run ${r + 1}/${runs} ${s.id}: ours ${fmtMs(t.ours.at(-1)!.ms)} tar ${fmtMs(t.tar.at(-1)!.ms)} moby ${fmtMs(t.moby.at(-1)!)} ours+sync ${fmtMs(t.synced.at(-1)!)} ours piped ${fmtMs(t.piped.at(-1)!)}`);
    }
  }
  fs.rmSync(work, { recursive: true, force: true });

  const rows: (string | number)[][] = [];
  for (const s of sets) {
    const t = times.get(s.id)!;
    const [o, g, m, sy, pp] = [median(t.ours.map((x) => x.ms)), median(t.tar.map((x) => x.ms)), median(t.moby), median(t.synced), median(t.piped)];
    const [oc, gc] = [median(t.ours.map((x) => x.cpuMs)), median(t.tar.map((x) => x.cpuMs))];
    const per = (ms: number) => `${Math.round(s.entries / (ms / 1000)).toLocaleString('en-US')} e/s, ${(s.bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
    rows.push([s.title, `${fmtMs(o)} ms (${per(o)})`, `${fmtMs(g)} ms`, `${fmtMs(m)} ms`, ratio(o, g), ratio(m, o), `${fmtMs(pp)} ms (${ratio(m, pp)})`, `${fmtMs(sy)} ms`, `${fmtMs(oc)} / ${fmtMs(gc)} ms`]);
  }
  console.log(`applyDiff (import), median of ${runs} interleaved runs; ${sets.map((s) => `${s.id}: ${s.entries} entries, ${(s.bytes / MiB).toFixed(0)} MiB content`).join('; ')}`);
  console.log(table(['layer', 'applyLayer', 'GNU tar -xf', 'moby-ovl apply (op)', 'ours/tar', 'moby/ours', 'ours, piped (moby/piped)', 'ours, sync:true', 'CPU ours / tar'], rows));
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
