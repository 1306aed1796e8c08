// What one Snapshots call costs the server that answers it: our snapshotter (the installed bin), a
// grpc-js server that answers a constant (bench/lib/constant-snapshots-server.ts: the floor of any
// snapshotter served with grpc-js), and stargz-snapshotter's Go server (bench/lib/stargz.ts). One
// client (grpc-js, this process) calls Stat of a committed snapshot on each in turn; per server: the
// call's p50/p90 as the client sees it, and the server process's CPU time per call (utime + stime
// from /proc over the timed calls).
//   node dist/bench/grpc-floor.js [calls=3000]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { SnapshotsClient, startSnapshotter } from '../test/support/snapshots-client.js';
import { startStargz } from './lib/stargz.js';
import { fmtMs, median, table } from './lib/stats.js';

const calls = Math.max(100, Number(process.argv[2] ?? 3000));
const scratch = mkdtempSync('/var/tmp/ovl2-bench-grpc-');
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime of a process, ms */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(path)) throw new Error(`${path} did not appear`);
}

const servers: { name: string; pid: number; client: SnapshotsClient; stop(): void }[] = [];
const loadBefore = load();
try {
  const ours = await startSnapshotter(join(scratch, 'home'), join(scratch, 'ovl2.sock'));
  servers.push({ name: 'ovl2 (ours)', pid: ours.child.pid!, client: new SnapshotsClient(join(scratch, 'ovl2.sock')), stop: () => void ours.stop() });
  const constant: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, 'lib', 'constant-snapshots-server.js'), join(scratch, 'constant.sock')], { stdio: 'inherit' });
  await waitForSocket(join(scratch, 'constant.sock'));
  servers.push({ name: 'grpc-js, constant answer', pid: constant.pid!, client: new SnapshotsClient(join(scratch, 'constant.sock')), stop: () => constant.kill('SIGTERM') });
  const stargz = await startStargz(join(scratch, 'stargz.sock'), join(scratch, 'stargz-root'));
  if (stargz) servers.push({ name: 'stargz (Go)', pid: stargz.pid, client: new SnapshotsClient(stargz.socket), stop: () => stargz.stop() });
  for (const s of servers) {
    if (s.name.startsWith('grpc-js')) continue;
    await s.client.prepare('p-key');
    await s.client.commit('p', 'p-key');
  }
  // the first 300 rounds warm the code up
  for (let r = 0; r < 300; r++) for (const s of servers) await s.client.stat('p');
  const times = new Map<string, number[]>(servers.map((s) => [s.name, []]));
  const cpu = new Map<string, number>(servers.map((s) => [s.name, -cpuMs(s.pid)]));
  for (let r = 0; r < calls; r++) {
    for (const s of servers) {
      const t = performance.now();
      await s.client.stat('p');
      times.get(s.name)!.push(performance.now() - t);
    }
  }
  for (const s of servers) cpu.set(s.name, cpu.get(s.name)! + cpuMs(s.pid));
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;
  console.log(`${calls} Stat calls each, interleaved, from one grpc-js client; load average ${loadBefore} before, ${load()} at the end`);
  console.log(table(['server', 'p50 ms', 'p90 ms', 'server CPU per call, ms'], servers.map((s) => {
    const xs = times.get(s.name)!;
    return [s.name, fmtMs(median(xs)), fmtMs(pct(xs, 0.9)), (cpu.get(s.name)! / calls).toFixed(3)];
  })));
} finally {
  for (const s of servers) { s.client.close(); s.stop(); }
  await new Promise((r) => setTimeout(r, 300));
  rmSync(scratch, { recursive: true, force: true });
}
