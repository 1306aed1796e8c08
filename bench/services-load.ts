// Issue #24 part 3: do the services' quick calls wait behind other layers' slow work? 20 clients call
// the quick calls in a loop — the plugin's Get/Exists/Put of a layer that is already mounted, the
// snapshotter's Stat/Mounts — first with nothing else going on (the baseline), then while a worker
// thread keeps other layers unmounting with dirty data (the unmount syncs the upper filesystem),
// streaming (Diff, Diff piped into ApplyDiff; snapshotter: Usage walks) and being written and removed
// (src: bench/lib/service-load.ts). Prints p50/p99/max per call kind. Both services are the installed
// bin in a fresh home on /var/tmp (a real disk: the syncs are real). The snapshotter side also runs
// stargz-snapshotter's proxy (the same gRPC API) under the same load, when it is there.
//   npm run build:ts && node dist/bench/services-load.js [seconds=15] [which=both|plugin|snapshotter] [bigMiB=64]
// OVERLAY2_LOAD=unmount,copy,diff,extract,usage: only those background loops (default all).
// OVERLAY2_STRACE=1: strace -T the plugin's event-loop thread during the load and print, per syscall,
// how often and how long it held that thread (> 10 ms), and the slowest single calls with their
// arguments; strace slows every call, so that run's latencies are not comparable with the others.
// OVERLAY2_BEFORE_CLI=PATH: also run the plugin of another build (its dist/cli/overlay2.cjs), its phases
// interleaved with this checkout's in the same run, labelled OVERLAY2_BEFORE_LABEL (default "before").
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { fmtMs, table } from './lib/stats.js';
import {
  Latencies, loadAverage, mountsUnder, PluginClient, SnapshotsClient, startPlugin, startSnapshotter, upperOf,
} from './lib/services.js';
import type { LoadReport, LoadSpec } from './lib/service-load.js';
import { CLI_BIN } from '../test/support/cli.js';

const seconds = Number(process.argv[2] ?? 15);
const which = process.argv[3] ?? 'both';
const bigMiB = Number(process.argv[4] ?? 64);
const CLIENTS = 20;
const only = (process.env.OVERLAY2_LOAD ?? '').split(',').filter(Boolean);
const STARGZ = process.env.OVERLAY2_STARGZ ?? '/opt/ovl-peers/containerd-stargz-grpc';
const scratch = mkdtempSync('/var/tmp/ovl2-svcload-');
const rows: string[][] = [];
const straceRows: string[][] = [];
const STRACE = process.env.OVERLAY2_STRACE === '1';
/** How many of the slowest single syscalls (> 5 ms) the strace run prints per phase, with their arguments. */
const STRACE_LINES = 25;
const straceLines: string[] = [];

/** strace -T of `pid`'s main thread (the event loop) until the returned stop(); then its slow syscalls per name. */
function traceEventLoop(service: string, pid: number): () => Promise<void> {
  const out = join(scratch, `strace-${pid}.txt`);
  const tracer = spawn('strace', ['-T', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  return async () => {
    tracer.kill('SIGINT');
    await new Promise((r) => tracer.once('exit', r));
    const by = new Map<string, { n: number; slow: number; max: number; total: number }>();
    const slowest: { ms: number; line: string }[] = [];
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      const m = /^(\w+)\(.*<(\d+\.\d+)>$/.exec(line);
      if (!m || m[1] === 'epoll_pwait' || m[1] === 'epoll_wait') continue; // waiting for work, not blocked by it
      const ms = Number(m[2]) * 1000;
      if (ms > 5) slowest.push({ ms, line });
      const e = by.get(m[1]!) ?? { n: 0, slow: 0, max: 0, total: 0 };
      e.n++; e.total += ms; e.max = Math.max(e.max, ms);
      if (ms > 10) e.slow++;
      by.set(m[1]!, e);
    }
    const top = [...by.entries()].filter(([, e]) => e.slow > 0 || e.max > 5).sort((a, b) => b[1].max - a[1].max).slice(0, 8);
    for (const [name, e] of top) straceRows.push([service, name, String(e.n), String(e.slow), fmtMs(e.max), fmtMs(e.total)]);
    // the calls themselves, with their arguments: which file step of which call held the loop
    slowest.sort((a, b) => b.ms - a.ms);
    for (const { ms, line } of slowest.slice(0, STRACE_LINES)) straceLines.push(`${service}  ${fmtMs(ms).padStart(7)} ms  ${line.length > 200 ? line.slice(0, 200) + '…' : line}`);
  };
}

type Probe = Record<string, Latencies>;

/** `CLIENTS` loops of `calls` (each client its own target) for `seconds`. */
async function probe(kinds: string[], calls: (client: number, time: (kind: string, fn: () => Promise<unknown>) => Promise<unknown>) => Promise<void>): Promise<Probe> {
  const lat: Probe = Object.fromEntries(kinds.map((k) => [k, new Latencies()]));
  const until = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    while (Date.now() < until) await calls(c, (kind, fn) => lat[kind]!.time(fn));
  }));
  return lat;
}

async function withLoad(spec: LoadSpec, run: () => Promise<Probe>, trace?: () => () => Promise<void>): Promise<{ lat: Probe; load: LoadReport }> {
  const worker = new Worker(new URL('./lib/service-load.js', import.meta.url), { workerData: spec });
  const report = new Promise<LoadReport>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  // let the load reach its stride (the first unmount, the first stream) before measuring
  await new Promise((r) => setTimeout(r, 2000));
  const stopTrace = trace?.();
  const lat = await run();
  await stopTrace?.();
  worker.postMessage('stop');
  const load = await report;
  await worker.terminate();
  return { lat, load };
}

function addRows(service: string, phase: string, lat: Probe, load?: LoadReport): void {
  for (const [kind, l] of Object.entries(lat)) {
    rows.push([service, phase, kind, String(l.ms.length), fmtMs(l.percentile(50)), fmtMs(l.percentile(99)), fmtMs(Math.max(...l.ms)), String(l.failed)]);
  }
  if (load) {
    const cycles = Object.entries(load.cycles).map(([k, n]) => `${k} ×${n}`).join('; ');
    console.log(`${service}: background load done: ${cycles}; ${load.failed} failed${load.errors.length ? ': ' + load.errors.join(' | ') : ''}`);
  }
}

async function benchPlugin(service: string, cli: string, round = ''): Promise<void> {
  const slug = `${service}${round}`.replace(/\W+/g, '-');
  const home = join(scratch, `${slug}-home`);
  const plugin = await startPlugin(home, join(scratch, `${slug}.sock`), cli);
  const c = plugin.client;
  try {
    await c.ok('GraphDriver.Create', { ID: 'base', Parent: '' });
    // `big`: 2,000 small files and 4 × 16 MiB, written through its mount (its diff is what was written)
    await c.ok('GraphDriver.CreateReadWrite', { ID: 'big', Parent: 'base' });
    const dir = (await c.ok('GraphDriver.Get', { ID: 'big' })).Dir as string;
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(dir, `d${d}`));
      for (let f = 0; f < 100; f++) writeFileSync(join(dir, `d${d}`, `f${f}`), `big ${d}/${f}\n`.repeat(1 + (f % 50)));
    }
    for (let i = 0; i < 4; i++) writeFileSync(join(dir, `blob${i}`), Buffer.alloc(16 << 20, i + 1));
    await c.ok('GraphDriver.Put', { ID: 'big' });
    for (let i = 0; i < CLIENTS; i++) {
      await c.ok('GraphDriver.CreateReadWrite', { ID: `probe-${i}`, Parent: 'base' });
      await c.ok('GraphDriver.Get', { ID: `probe-${i}` }); // held for the whole run: the clients' Get/Put never unmount
    }
    const clients = Array.from({ length: CLIENTS }, () => new PluginClient(plugin.client.socket));
    const kinds = ['Get', 'Exists', 'Put'];
    const calls = async (i: number, time: (k: string, fn: () => Promise<unknown>) => Promise<unknown>) => {
      const id = `probe-${i}`;
      await time('Get', () => clients[i]!.ok('GraphDriver.Get', { ID: id, MountLabel: '' }));
      await time('Exists', () => clients[i]!.ok('GraphDriver.Exists', { ID: id }));
      await time('Put', () => clients[i]!.ok('GraphDriver.Put', { ID: id }));
    };
    console.log(`${service}: baseline, load average ${loadAverage()}`);
    addRows(service, `alone${round}`, await probe(kinds, calls));
    console.log(`${service}: under load, load average ${loadAverage()}`);
    const { lat, load } = await withLoad({ kind: 'plugin', socket: plugin.client.socket, bigMiB, only }, () => probe(kinds, calls),
      STRACE ? () => traceEventLoop(service, plugin.child.pid!) : undefined);
    addRows(service, `under load${round}`, lat, load);
    console.log(`${service}: after the load, load average ${loadAverage()}`);
    for (const cl of clients) cl.close();
    for (let i = 0; i < CLIENTS; i++) await c.ok('GraphDriver.Put', { ID: `probe-${i}` });
  } finally {
    await plugin.stop();
    const left = mountsUnder(home);
    if (left.length) console.log(`${service}: ${left.length} mounts left under the home after its shutdown`);
  }
}

/** A snapshotter (ours or a peer) on `socket`: `base`, a 50,000-file active snapshot, 20 probes. */
async function benchSnapshotter(name: string, socket: string): Promise<void> {
  const c = new SnapshotsClient(socket);
  try {
    const baseMounts = await c.prepare('base-a', '');
    writeFileSync(join(upperOf(baseMounts), 'base-file'), 'base\n');
    await c.commit('base', 'base-a');
    const big = await c.prepare('bigactive', 'base');
    const upper = upperOf(big);
    for (let d = 0; d < 100; d++) {
      mkdirSync(join(upper, `d${d}`));
      for (let f = 0; f < 500; f++) writeFileSync(join(upper, `d${d}`, `f${f}`), f % 10 ? '' : `data ${f}\n`);
    }
    for (let i = 0; i < CLIENTS; i++) await c.prepare(`probe-${i}`, 'base');
    const clients = Array.from({ length: CLIENTS }, () => new SnapshotsClient(socket));
    const kinds = ['Stat', 'Mounts'];
    const calls = async (i: number, time: (k: string, fn: () => Promise<unknown>) => Promise<unknown>) => {
      await time('Stat', () => clients[i]!.stat(`probe-${i}`));
      await time('Mounts', () => clients[i]!.mounts(`probe-${i}`));
    };
    console.log(`${name}: baseline, load average ${loadAverage()}`);
    addRows(name, 'alone', await probe(kinds, calls));
    console.log(`${name}: under load, load average ${loadAverage()}`);
    const { lat, load } = await withLoad({ kind: 'snapshotter', socket, bigMiB, only }, () => probe(kinds, calls));
    addRows(name, 'under load', lat, load);
    console.log(`${name}: after the load, load average ${loadAverage()}`);
    for (const cl of clients) cl.close();
  } finally {
    c.close();
  }
}

try {
  console.log(`services under load: ${CLIENTS} clients, ${seconds} s per phase, ${bigMiB} MiB per dirty layer; load average ${loadAverage()}`);
  if (which === 'both' || which === 'plugin') {
    const before = process.env.OVERLAY2_BEFORE_CLI;
    const builds: [string, string][] = [['plugin', CLI_BIN], ...(before ? [[`plugin (${process.env.OVERLAY2_BEFORE_LABEL ?? 'before'})`, before] as [string, string]] : [])];
    // twice each, in turn: neither build always meets the machine's quieter or busier minute
    for (const round of before ? [0, 1] : [0]) {
      for (const [service, cli] of round ? [...builds].reverse() : builds) await benchPlugin(service, cli, before ? ` #${round + 1}` : '');
    }
  }
  if (which === 'both' || which === 'snapshotter') {
    const ours = await startSnapshotter(join(scratch, 'snap-home'), join(scratch, 'snap.sock'));
    try {
      await benchSnapshotter('snapshotter', ours.socket);
    } finally {
      await ours.stop();
    }
    if (existsSync(STARGZ)) {
      const sock = join(scratch, 'stargz.sock');
      const stargz: ChildProcess = spawn(STARGZ, ['--address', sock, '--root', join(scratch, 'stargz-root')], { stdio: 'ignore' });
      for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      try {
        await benchSnapshotter('stargz (peer)', sock);
      } finally {
        stargz.kill('SIGTERM');
        await new Promise((r) => stargz.once('exit', r));
      }
    } else {
      console.log(`stargz-snapshotter not found at ${STARGZ}: no peer column`);
    }
  }
  console.log(`\nload average ${loadAverage()}; ms\n`);
  console.log(table(['service', 'phase', 'call', 'calls', 'p50', 'p99', 'max', 'failed'], rows));
  if (straceRows.length) {
    console.log(`\nthe plugin's event-loop thread under load (strace -T, epoll waits left out): syscalls that held it longest, ms\n`);
    console.log(table(['service', 'syscall', 'calls', '> 10 ms', 'max', 'total'], straceRows));
    console.log(`\nthe slowest single syscalls (> 5 ms, at most ${STRACE_LINES} per phase), as strace wrote them\n`);
    for (const l of straceLines) console.log(l);
  }
} finally {
  spawnSync('sh', ['-c', `grep ' ${scratch}' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  rmSync(scratch, { recursive: true, force: true });
}
