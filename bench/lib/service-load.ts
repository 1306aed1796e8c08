// The background load of bench/services-load.ts, run in a worker thread so that its own file writes
// never hold up the measuring thread's clients: layers made dirty and unmounted (the unmount syncs
// the upper filesystem), big layers streamed out and in, big snapshots walked and removed.
//   plugin:      CreateReadWrite + Get + BIG MiB written into the mount + Put + Remove, 2 at a time;
//                Diff of `big` piped into ApplyDiff of a new layer, then Remove; Diff of `big` alone.
//   snapshotter: Prepare + BIG MiB and 2,000 small files written into its upperdir (what containerd's
//                applier does) + Commit + Remove, 2 at a time; Usage of a 50,000-file active snapshot.
import { parentPort, workerData } from 'node:worker_threads';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginClient, SnapshotsClient, upperOf } from './services.js';

/** `only`: the names of the loops to run (all when empty): unmount, copy, diff; extract, usage. */
export interface LoadSpec { kind: 'plugin' | 'snapshotter'; socket: string; bigMiB: number; only: string[] }
export interface LoadReport { cycles: Record<string, number>; failed: number; errors: string[] }

const CHUNK = Buffer.alloc(4 << 20, 0x5a);

async function writeBig(path: string, mib: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let written = 0; written < mib << 20; written += CHUNK.length) await fh.write(CHUNK);
  } finally {
    await fh.close();
  }
}

async function writeSmall(dir: string, n: number): Promise<void> {
  for (let d = 0; d < n / 100; d++) {
    await mkdir(join(dir, `d${d}`), { recursive: true });
    await Promise.all(Array.from({ length: 100 }, (_, f) => writeFile(join(dir, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(1 + (f % 9)))));
  }
}

async function run(spec: LoadSpec, stopped: () => boolean): Promise<LoadReport> {
  const report: LoadReport = { cycles: {}, failed: 0, errors: [] };
  const loop = (tag: string, name: string, step: (i: number) => Promise<void>) => (async () => {
    if (spec.only.length && !spec.only.includes(tag)) return;
    for (let i = 0; !stopped(); i++) {
      try {
        await step(i);
        report.cycles[name] = (report.cycles[name] ?? 0) + 1;
      } catch (e) {
        report.failed++;
        if (report.errors.length < 5) report.errors.push(`${name}: ${(e as Error).message}`);
      }
    }
  })();

  if (spec.kind === 'plugin') {
    const c = new PluginClient(spec.socket);
    const unmounts = (w: number) => loop('unmount', 'dirty Put (unmount)', async (i) => {
      const id = `u${w}-${i}`;
      await c.ok('GraphDriver.CreateReadWrite', { ID: id, Parent: 'base', MountLabel: '', StorageOpt: {} });
      const dir = (await c.ok('GraphDriver.Get', { ID: id, MountLabel: '' })).Dir as string;
      await writeBig(join(dir, 'big'), spec.bigMiB);
      await c.ok('GraphDriver.Put', { ID: id });
      await c.ok('GraphDriver.Remove', { ID: id });
    });
    await Promise.all([
      unmounts(0), unmounts(1),
      loop('copy', 'Diff → ApplyDiff + Remove', async (i) => {
        await c.ok('GraphDriver.Create', { ID: `s-${i}`, Parent: 'base', MountLabel: '', StorageOpt: {} });
        await c.copyLayer('big', 'base', `s-${i}`);
        await c.ok('GraphDriver.Remove', { ID: `s-${i}` });
      }),
      loop('diff', 'Diff', async () => { await c.diffLength('big', 'base'); }),
    ]);
    c.close();
  } else {
    const c = new SnapshotsClient(spec.socket);
    const extracts = (w: number) => loop('extract', 'Prepare + write upper + Commit + Remove', async (i) => {
      const key = `x${w}-${i}`;
      const mounts = await c.prepare(key, 'base');
      const upper = upperOf(mounts);
      await writeBig(join(upper, 'big'), spec.bigMiB);
      await writeSmall(upper, 2000);
      await c.commit(`xc${w}-${i}`, key);
      await c.remove(`xc${w}-${i}`);
    });
    await Promise.all([
      extracts(0), extracts(1),
      loop('usage', 'Usage (50,000 files)', async () => { await c.usage('bigactive'); }),
    ]);
    c.close();
  }
  return report;
}

if (parentPort) {
  let stop = false;
  parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
  run(workerData as LoadSpec, () => stop).then((r) => parentPort!.postMessage(r));
}
