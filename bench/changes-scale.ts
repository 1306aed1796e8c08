// changes at scale (issue #24): `overlay2 changes` — the installed CLI, which writes the list as the
// walk hands it out — beside moby's Changes (moby-ovl, Docker 20.10's naive ChangesDirs) in the same
// run, on
//   1m:   an upper of 1,000,000 new (empty) files, 1000 dirs × 1000, over an empty base;
//   200k: the top of a 4-layer chain (base of 100k files, two middle layers with copy-ups, deletes
//         and chmods of their own) with ~200k mixed changes made through moby's mount: adds in new
//         dirs, deletes, appends (copy-ups), chmods, opaque re-creations;
// and, on the 1M-file layer, diffSize, diff (export to a file) and applyDiff of that tar into a
// fresh layer, through the same CLI. Each command is one fresh process: wall time and peak RSS
// (VmHWM of the process, sampled every 10 ms). Outputs of ours and moby's are compared by sha256.
// The trees are made on the machine's disk under bench/.data and removed at the end.
//   node dist/bench/changes-scale.js [sets: 1m,200k] [runs=1]
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { ensurePeer } from './lib/peers.js';
import { peakRss, type PeakRss } from './lib/peak-rss.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { DATA, MobyHome } from './lib/trees.js';

const sets = (process.argv[2] ?? '1m,200k').split(',');
const runs = Math.max(1, Number(process.argv[3] ?? 1));
const pkg = JSON.parse(fs.readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { bin: { overlay2: string } };
const CLI = join(process.cwd(), pkg.bin.overlay2);
const pad = (n: number, w: number) => String(n).padStart(w, '0');

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
}

function lineCount(file: string): number {
  const b = fs.readFileSync(file);
  let n = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  return n;
}

function freeSpace(): string {
  const df = execFileSync('df', ['-h', '--output=avail,iavail', DATA], { encoding: 'utf8' }).trim().split('\n').pop()!.trim().split(/\s+/);
  return `${df[0]} free, ${df[1]} inodes free`;
}

async function ours(home: string, args: string[], out: string): Promise<PeakRss> {
  const r = await peakRss(process.execPath, [CLI, '--home', home, ...args], { stdoutFile: out, stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`overlay2 ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
  return r;
}

async function moby(bin: string, home: string, args: string[], out: string): Promise<PeakRss & { opMs: number }> {
  const r = await peakRss(bin, ['--home', home, ...args], { stdoutFile: out, stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`moby-ovl ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
  const op = /op=([0-9.]+)ms/.exec(r.stderr);
  return { ...r, opMs: op ? Number(op[1]) : NaN };
}

interface Row { set: string; changes: number; ours: PeakRss[]; moby: Array<PeakRss & { opMs: number }>; same: string }

async function compare(set: string, bin: string, home: string, id: string, parent: string): Promise<Row> {
  const row: Row = { set, changes: 0, ours: [], moby: [], same: '' };
  const oursOut = join(DATA, `scale-${set}-ours.txt`), mobyOut = join(DATA, `scale-${set}-moby.txt`);
  for (let i = 0; i < runs; i++) {
    row.ours.push(await ours(home, ['changes', id, '--parent', parent], oursOut));
    row.moby.push(await moby(bin, home, ['changes', id, parent], mobyOut));
  }
  row.changes = lineCount(oursOut);
  const a = sha256(oursOut), b = sha256(mobyOut);
  row.same = a === b ? `yes (sha256 ${a}…)` : `NO (ours ${a}… ${row.changes} lines, moby ${b}… ${lineCount(mobyOut)} lines; kept in ${DATA})`;
  if (a === b) { fs.rmSync(oursOut); fs.rmSync(mobyOut); }
  return row;
}

/** 1000 dirs × 1000 empty files, made with plain syscalls (a minute or so here). */
function millionFiles(dir: string): void {
  fs.mkdirSync(dir);
  for (let d = 0; d < 1000; d++) {
    const sub = join(dir, `d${pad(d, 3)}`);
    fs.mkdirSync(sub);
    for (let f = 0; f < 1000; f++) fs.closeSync(fs.openSync(join(sub, `f${pad(f, 6)}`), 'w'));
  }
}

function chain(m: MobyHome): void {
  m.create('base', null);
  const b = m.diffDir('base');
  for (let d = 0; d < 400; d++) {
    const sub = join(b, `d${pad(d, 3)}`);
    fs.mkdirSync(sub);
    for (let f = 0; f < 250; f++) fs.writeFileSync(join(sub, `f${pad(f, 3)}`), `${d}/${f}\n`);
    fs.utimesSync(sub, 1_600_000_000, 1_600_000_000);
  }
  const file = (mnt: string, d: number, f: number) => join(mnt, `d${pad(d, 3)}`, `f${pad(f, 3)}`);
  m.create('l1', 'base');
  m.edit('l1', (mnt) => {
    for (let d = 0; d < 40; d++) for (let f = 0; f < 100; f++) fs.appendFileSync(file(mnt, d, f), 'l1\n');
    for (let d = 40; d < 80; d++) for (let f = 0; f < 50; f++) fs.writeFileSync(join(mnt, `d${pad(d, 3)}`, `l1-${f}`), 'x');
  });
  m.create('l2', 'l1');
  m.edit('l2', (mnt) => {
    for (let d = 80; d < 100; d++) for (let f = 0; f < 50; f++) fs.rmSync(file(mnt, d, f));
    for (let d = 100; d < 120; d++) for (let f = 0; f < 100; f++) fs.chmodSync(file(mnt, d, f), 0o600);
  });
  m.create('top', 'l2');
  m.edit('top', (mnt) => {
    for (let d = 0; d < 160; d++) for (let f = 0; f < 250; f++) fs.rmSync(file(mnt, d, f), { force: true });
    for (let d = 160; d < 320; d++) for (let f = 0; f < 250; f++) fs.appendFileSync(file(mnt, d, f), 'top\n');
    for (let d = 320; d < 380; d++) for (let f = 0; f < 250; f++) fs.chmodSync(file(mnt, d, f), 0o640);
    for (let d = 380; d < 400; d++) {
      const sub = join(mnt, `d${pad(d, 3)}`);
      fs.rmSync(sub, { recursive: true });
      fs.mkdirSync(sub);
      fs.writeFileSync(join(sub, 'again'), 'a');
    }
    for (let d = 0; d < 200; d++) {
      const sub = join(mnt, `n${pad(d, 3)}`);
      fs.mkdirSync(sub);
      for (let f = 0; f < 500; f++) fs.closeSync(fs.openSync(join(sub, `f${pad(f, 3)}`), 'w'));
    }
  });
}

function fmtRss(rs: PeakRss[]): string {
  return `${Math.max(...rs.map((r) => r.selfMiB)).toFixed(1)} MiB`;
}

async function main(): Promise<void> {
  const bin = ensurePeer('moby-ovl');
  if (!bin) {
    console.log('peer not built: moby-ovl — nothing to compare with');
    return;
  }
  fs.mkdirSync(DATA, { recursive: true });
  console.error(`disk under ${DATA}: ${freeSpace()}`);
  const rows: Row[] = [];
  const extra: string[][] = [];
  if (sets.includes('1m')) {
    const m = new MobyHome(bin, 'scale-1m');
    const tree = join(DATA, 'scale-1m-upper');
    const ourHome = join(DATA, 'scale-1m-apply-home');
    const tar = join(DATA, 'scale-1m.tar');
    try {
      fs.rmSync(tree, { recursive: true, force: true });
      let t = Date.now();
      millionFiles(tree);
      console.error(`1M files made in ${((Date.now() - t) / 1000).toFixed(0)} s; ${freeSpace()}`);
      m.create('base', null);
      m.createAdopting('big', 'base', tree);
      execFileSync('sync');
      rows.push(await compare('1m', bin, m.home, 'big', 'base'));
      // the other operations on the same layer, ours only (issue #12's bound): one process each
      const size = await ours(m.home, ['diffsize', 'big', '--parent', 'base'], join(DATA, 'scale-1m-size.txt'));
      const diff = await ours(m.home, ['diff', 'big', '--parent', 'base', '-o', tar], join(DATA, 'scale-1m-diff.txt'));
      const tarBytes = fs.statSync(tar).size;
      t = Date.now();
      spawnSync(process.execPath, [CLI, '--home', ourHome, 'create', 'fresh']);
      const apply = await ours(ourHome, ['apply', 'fresh', '-i', tar], join(DATA, 'scale-1m-apply.txt'));
      extra.push(['diffSize', fmtMs(size.ms), `${size.selfMiB.toFixed(1)} MiB`, fs.readFileSync(join(DATA, 'scale-1m-size.txt'), 'utf8').trim() + ' bytes']);
      extra.push(['diff → file', fmtMs(diff.ms), `${diff.selfMiB.toFixed(1)} MiB`, `${(tarBytes / 1048576).toFixed(0)} MiB of tar`]);
      extra.push(['applyDiff of that tar', fmtMs(apply.ms), `${apply.selfMiB.toFixed(1)} MiB`, `${fs.readFileSync(join(DATA, 'scale-1m-apply.txt'), 'utf8').trim()} bytes`]);
    } finally {
      m.dispose();
      for (const p of [tree, tar, ourHome]) {
        if (fs.existsSync(p)) spawnSync('rm', ['-rf', '--one-file-system', p]);
      }
      for (const f of ['size', 'diff', 'apply']) fs.rmSync(join(DATA, `scale-1m-${f}.txt`), { force: true });
    }
  }
  if (sets.includes('200k')) {
    const m = new MobyHome(bin, 'scale-200k');
    try {
      const t = Date.now();
      chain(m);
      console.error(`4-layer chain made in ${((Date.now() - t) / 1000).toFixed(0)} s`);
      execFileSync('sync');
      rows.push(await compare('200k', bin, m.home, 'top', 'l2'));
    } finally {
      // OVERLAY2_BENCH_KEEP=1: the chain stays (its home is printed) for profiling by hand
      if (process.env.OVERLAY2_BENCH_KEEP === '1') console.error(`kept: ${m.home} (layer top)`);
      else m.dispose();
    }
  }
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\nchanges at scale: one fresh process per call, ${runs} run(s), median wall time (moby's own op= time in brackets), the highest peak RSS; load average at the end ${load}\n`);
  console.log(table(['layer', 'changes', 'ours: overlay2 changes', 'ours peak RSS', 'moby Changes', 'moby peak RSS', 'moby ÷ ours (time)', 'moby ÷ ours (RSS)', 'same output'],
    rows.map((r) => [r.set === '1m' ? '1,000,000 new files' : '~200k mixed, 4-layer chain', r.changes, fmtMs(median(r.ours.map((x) => x.ms))), fmtRss(r.ours),
      `${fmtMs(median(r.moby.map((x) => x.ms)))} (${fmtMs(median(r.moby.map((x) => x.opMs)))})`, fmtRss(r.moby),
      ratio(median(r.moby.map((x) => x.ms)), median(r.ours.map((x) => x.ms))),
      ratio(Math.max(...r.moby.map((x) => x.selfMiB)), Math.max(...r.ours.map((x) => x.selfMiB))), r.same])));
  if (extra.length) {
    console.log('\nthe 1M-file layer through the other operations (ours, one fresh process each):\n');
    console.log(table(['operation', 'wall', 'peak RSS', 'result'], extra));
  }
}

await main();
