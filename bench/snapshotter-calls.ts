// The Snapshots RPCs one container costs, timed call by call from a gRPC client: on our snapshotter's
// own socket (what the proxy itself answers in), through containerd 1.6's Snapshots service to our
// proxy, to stargz-snapshotter's proxy (bench/lib/stargz.ts; direct too) and to containerd's built-in
// overlayfs — interleaved in one run, each round rotating which goes first. Then `ctr run --rm IMAGE
// true` on each, interleaved too, with each run's time ÷ the built-in's and stargz's in the same round.
// All on one fresh ext4 with its image in RAM (OVERLAY2_BENCH_DISK=disk: on the disk), see
// bench/lib/fresh-ext4.ts.
// The parent is a one-layer image imported with ctr (an empty committed snapshot on the direct ones).
//   - `ctr run --rm` shape: Stat(parent), Prepare, Mounts, Mounts, Remove (what containerd calls on a
//     proxy for one container; through containerd, Remove only marks its database, and the backend's
//     Remove runs later in containerd's garbage collector, so only the direct column times our Remove);
//   - commit shape: Prepare, Commit, Stat, Remove of the committed snapshot.
//   node dist/bench/snapshotter-calls.js [rounds=200] [ctr-runs=20]
// OVERLAY2_BASELINE=DIR (a built checkout, bench/lib/baseline.ts): its snapshotter too, as a second
// proxy of the same containerd and a second direct socket — before/after a change in one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { CLI_BIN } from '../test/support/cli.js';
import { startContainerd, type PrivateContainerd } from '../test/support/containerd.js';
import { SnapshotsClient, startSnapshotter, type RunningSnapshotter } from '../test/support/snapshots-client.js';
import { writeBaseRootTar } from '../test/support/test-image.js';
import { BASELINE_DIR } from './lib/baseline.js';
import { fmtMs, median, table } from './lib/stats.js';
import { benchBacking, mountFreshExt4 } from './lib/fresh-ext4.js';
import { startStargz, type RunningStargz } from './lib/stargz.js';

const rounds = Math.max(10, Number(process.argv[2] ?? 200));
const ctrRuns = Math.max(3, Number(process.argv[3] ?? 20));
const scratch = mkdtempSync('/var/tmp/ovl2-bench-calls-');
const fs = mountFreshExt4(scratch, 4, benchBacking());
const cli = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`overlay2 ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const imageHome = join(scratch, 'image-home');
cli(imageHome, 'create', 'base');
cli(imageHome, 'apply', 'base', '-i', writeBaseRootTar(scratch));
const archive = join(scratch, 'image.tar');
cli(imageHome, 'save', 'base', '-o', archive, '--tag', 'bench/calls:1');
const image = 'docker.io/bench/calls:1';

// Each build twice: one proxy behind containerd, one for the direct calls — containerd's garbage
// collector removes from its proxies every snapshot its database does not know.
const builds: Record<string, string> = { ovl2: CLI_BIN, ...(BASELINE_DIR ? { baseline: join(BASELINE_DIR, 'dist/cli/overlay2.cjs') } : {}) };
const servers: RunningSnapshotter[] = [];
const proxies: Record<string, string> = {};
const directSockets: Record<string, string> = {};
for (const [name, bin] of Object.entries(builds)) {
  proxies[name] = join(scratch, `${name}.sock`);
  directSockets[name] = join(scratch, `${name}-direct.sock`);
  servers.push(await startSnapshotter(join(scratch, `${name}-home`), proxies[name]!, [], bin));
  servers.push(await startSnapshotter(join(scratch, `${name}-direct-home`), directSockets[name]!, [], bin));
}
const stargzes: RunningStargz[] = [];
for (const where of ['proxy', 'direct']) {
  const s = await startStargz(join(scratch, `stargz-${where}.sock`), join(scratch, `stargz-${where}-root`));
  if (s) stargzes.push(s);
}
if (stargzes.length === 2) {
  proxies.stargz = stargzes[0]!.socket;
  directSockets.stargz = stargzes[1]!.socket;
}
const snapshotters = ['overlayfs', ...Object.keys(proxies)];
let ctd: PrivateContainerd | null = null;
const clients: SnapshotsClient[] = [];
const times: Record<string, Record<string, number[]>> = {};
const runs: Record<string, number[]> = {};
const loadBefore = load();

try {
  ctd = await startContainerd(join(scratch, 'containerd'), { snapshotters: proxies });
  for (const sn of snapshotters) await ctd.ctr(['images', 'import', '--snapshotter', sn, archive]);
  const targets: Record<string, SnapshotsClient> = {};
  const parents: Record<string, string> = {};
  for (const name of Object.keys(directSockets)) {
    const direct = new SnapshotsClient(directSockets[name]!);
    await direct.prepare('parent-key');
    await direct.commit('parent', 'parent-key');
    targets[`${name} direct`] = direct;
    parents[`${name} direct`] = 'parent';
  }
  for (const sn of snapshotters) targets[`ctd → ${sn}`] = new SnapshotsClient(ctd.address, undefined, { snapshotter: sn, namespace: ctd.namespace });
  clients.push(...Object.values(targets));
  const committed = (await targets['ctd → overlayfs']!.list()).infos.find((i) => i.kind === 'COMMITTED')!.name;
  for (const sn of snapshotters) parents[`ctd → ${sn}`] = committed;

  const timed = async <T>(call: string, target: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const r = await fn();
    ((times[call] ??= {})[target] ??= []).push(performance.now() - t);
    return r;
  };
  const names = Object.keys(targets);
  // a snapshot no lease, image or container holds is garbage to containerd unless it is a root
  const root = { 'containerd.io/gc.root': 'bench' };
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const target = names[(i + r) % names.length]!;
      const c = targets[target]!;
      const parent = parents[target]!;
      const key = `calls-${r}`;
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

  for (let r = 0; r < ctrRuns; r++) {
    for (let i = 0; i < snapshotters.length; i++) {
      const sn = snapshotters[(i + r) % snapshotters.length]!;
      const t = performance.now();
      await ctd.ctr(['run', '--rm', '--snapshotter', sn, image, `run-${sn}-${r}`, '/bin/true']);
      (runs[sn] ??= []).push(performance.now() - t);
    }
  }
} finally {
  for (const c of clients) c.close();
  await ctd?.stop();
  for (const s of servers) await s.stop();
  for (const s of stargzes) s.stop();
  spawnSync('sh', ['-c', `grep ' ${scratch}/' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  fs.remove();
  rmSync(scratch, { recursive: true, force: true });
}

const cols = Object.keys(Object.values(times)[0] ?? {});
const rows = Object.entries(times).map(([call, by]) => {
  const p = (t: string, q: number) => percentile(by[t] ?? [], q);
  const r = (peer: string) => {
    const q = p('ctd → ovl2', 50) / p(`ctd → ${peer}`, 50);
    return Number.isFinite(q) ? `${q.toFixed(2)}×` : '—';
  };
  return [call, ...cols.flatMap((t) => [fmtMs(median(by[t] ?? [])), fmtMs(p(t, 99))]), r('overlayfs'), r('stargz')];
});
console.log(`${rounds} rounds, ms; a fresh ext4 (image on ${fs.backing === 'ram' ? 'RAM' : 'the disk'}); load average ${loadBefore} before, ${load()} at the end`);
console.log(table(['call', ...cols.flatMap((t) => [`${t} p50`, 'p99']), '→ovl2 ÷ →overlayfs (p50)', '→ovl2 ÷ →stargz (p50)'], rows));
console.log(`\n\`ctr run --rm ${image} ID /bin/true\`, ${ctrRuns} runs each, interleaved, ms`);
/** this snapshotter's run ÷ the peer's in the same round: their median and the middle 80% */
const paired = (sn: string, peer: string) => {
  const q = (runs[sn] ?? []).map((t, i) => t / runs[peer]![i]!).filter(Number.isFinite);
  return q.length === 0 ? '—' : `${median(q).toFixed(3)}× (${percentile(q, 10).toFixed(2)}–${percentile(q, 90).toFixed(2)})`;
};
const base = median(runs.overlayfs ?? []);
console.log(table(['snapshotter', 'median', 'p10', 'p90', 'median ÷ overlayfs', '÷ overlayfs, paired', '÷ stargz, paired'], snapshotters.map((sn) => {
  const xs = runs[sn] ?? [];
  return [sn, fmtMs(median(xs)), fmtMs(percentile(xs, 10)), fmtMs(percentile(xs, 90)), `${(median(xs) / base).toFixed(3)}×`,
    paired(sn, 'overlayfs'), runs.stargz ? paired(sn, 'stargz') : '—'];
})));
