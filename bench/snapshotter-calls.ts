// The Snapshots RPCs one container costs, timed call by call from a gRPC client: on our snapshotter's
// own socket (what the proxy itself answers in), through containerd 1.6's Snapshots service to our
// proxy, and through the same service to containerd's built-in overlayfs — interleaved in one run,
// each round rotating which goes first. The parent is a one-layer image imported with ctr into both
// (an empty committed snapshot on the direct one).
//   - `ctr run --rm` shape: Stat(parent), Prepare, Mounts, Mounts, Remove (what containerd calls on a
//     proxy for one container; through containerd, Remove only marks its database, and the backend's
//     Remove runs later in containerd's garbage collector, so only the direct column times our Remove);
//   - commit shape: Prepare, Commit, Stat, Remove of the committed snapshot.
//   node dist/bench/snapshotter-calls.js [rounds=200]
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { CLI_BIN } from '../test/support/cli.js';
import { startContainerd, type PrivateContainerd } from '../test/support/containerd.js';
import { SnapshotsClient, startSnapshotter } from '../test/support/snapshots-client.js';
import { writeBaseRootTar } from '../test/support/test-image.js';
import { fmtMs, median, table } from './lib/stats.js';

const rounds = Math.max(10, Number(process.argv[2] ?? 200));
const scratch = mkdtempSync('/var/tmp/ovl2-bench-calls-');
const cli = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`overlay2 ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const imageHome = join(scratch, 'image-home');
cli(imageHome, 'create', 'base');
cli(imageHome, 'apply', 'base', '-i', writeBaseRootTar(scratch));
const archive = join(scratch, 'image.tar');
cli(imageHome, 'save', 'base', '-o', archive, '--tag', 'bench/calls:1');

// Two of ours: containerd's garbage collector removes from its proxy every snapshot its database does
// not know, so the direct calls go to a second snapshotter of their own (same build, own home).
const socket = join(scratch, 'ovl2.sock');
const ours = await startSnapshotter(join(scratch, 'ovl2-home'), socket);
const directSocket = join(scratch, 'ovl2-direct.sock');
const oursDirect = await startSnapshotter(join(scratch, 'ovl2-direct-home'), directSocket);
let ctd: PrivateContainerd | null = null;
const clients: SnapshotsClient[] = [];
const times: Record<string, Record<string, number[]>> = {};

try {
  ctd = await startContainerd(join(scratch, 'containerd'), { snapshotters: { ovl2: socket } });
  for (const sn of ['overlayfs', 'ovl2']) await ctd.ctr(['images', 'import', '--snapshotter', sn, archive]);
  const viaCtd = (snapshotter: string) => new SnapshotsClient(ctd!.address, undefined, { snapshotter, namespace: ctd!.namespace });
  const direct = new SnapshotsClient(directSocket);
  await direct.prepare('parent-key');
  await direct.commit('parent', 'parent-key');
  const targets: Record<string, SnapshotsClient> = { 'ovl2 direct': direct, 'ctd → ovl2': viaCtd('ovl2'), 'ctd → overlayfs': viaCtd('overlayfs') };
  clients.push(...Object.values(targets));
  const committed = (await targets['ctd → overlayfs']!.list()).infos.find((i) => i.kind === 'COMMITTED')!.name;
  const parents: Record<string, string> = {
    'ovl2 direct': 'parent',
    'ctd → ovl2': committed,
    'ctd → overlayfs': committed,
  };
  const names = Object.keys(targets);
  const timed = async <T>(call: string, target: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await fn();
    ((times[call] ??= {})[target] ??= []).push(performance.now() - t);
    return r;
  };
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const target = names[(i + r) % names.length]!;
      const c = targets[target]!;
      const parent = parents[target]!;
      const key = `calls-${r}`;
      // a snapshot no lease, image or container holds is garbage to containerd unless it is a root
      const root = { 'containerd.io/gc.root': 'bench' };
      const t = performance.now();
      await timed('Stat (parent)', target, () => c.stat(parent));
      await timed('Prepare', target, () => c.prepare(key, parent, root));
      await timed('Mounts', target, () => c.mounts(key));
      await timed('Mounts', target, () => c.mounts(key));
      await timed('Remove (active)', target, () => c.remove(key));
      ((times['run --rm calls, sum'] ??= {})[target] ??= []).push(performance.now() - t);
      await timed('Prepare', target, () => c.prepare(`${key}-c`, parent, root));
      await timed('Commit', target, () => c.commit(`committed-${r}`, `${key}-c`, root));
      await timed('Stat', target, () => c.stat(`committed-${r}`));
      await timed('Remove (committed)', target, () => c.remove(`committed-${r}`));
    }
  }
} finally {
  for (const c of clients) c.close();
  await ctd?.stop();
  await ours.stop();
  await oursDirect.stop();
  spawnSync('sh', ['-c', `grep ' ${scratch}' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  rmSync(scratch, { recursive: true, force: true });
}

const cols = ['ovl2 direct', 'ctd → ovl2', 'ctd → overlayfs'];
const rows = Object.entries(times).map(([call, by]) => {
  const p = (t: string, q: number) => percentile(by[t] ?? [], q);
  const r = p('ctd → ovl2', 50) / p('ctd → overlayfs', 50);
  return [call, ...cols.flatMap((t) => [fmtMs(median(by[t] ?? [])), fmtMs(p(t, 99))]), Number.isFinite(r) ? `${r.toFixed(2)}×` : '—'];
});
console.log(`${rounds} rounds, ms; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`);
console.log(table(['call', ...cols.flatMap((t) => [`${t} p50`, 'p99']), '→ovl2 ÷ →overlayfs (p50)'], rows));
