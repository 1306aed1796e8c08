// The proxy snapshotter under a real containerd 1.6, beside containerd's built-in overlayfs and
// stargz-snapshotter's containerd-stargz-grpc (run as a plain proxy snapshotter, built from Debian's Go
// sources by ../shared/peers/build-stargz.sh), all on the same filesystem in one run, interleaved:
//   - `ctr images import --snapshotter S` of a 5,000-file image and of a 200 MB image (content ingest
//     included, the same work for every S);
//   - `ctr run --rm --snapshotter S IMAGE ID true` latency;
//   - `ctr snapshots --snapshotter S usage KEY` of an active snapshot holding 50,000 files;
//   - `ctr snapshots --snapshotter S ls` with 1,000 snapshots (containerd answers from its own database),
//     and the List RPC itself on the proxies' sockets (what containerd's garbage collector calls).
//   node dist/bench/snapshotter.js [runs=5]
// OVERLAY2_STARGZ=PATH: the stargz daemon (default /opt/ovl-peers/containerd-stargz-grpc; absent: its
// columns say so). Everything (containerd's root, the three snapshotters' homes, the images) is on one
// fresh ext4 whose image is in RAM, so the machine's disk does not decide the figures
// (bench/lib/fresh-ext4.ts says why); OVERLAY2_BENCH_DISK=disk puts that image on the disk instead.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI_BIN } from '../test/support/cli.js';
import { startContainerd, run, sleep, type PrivateContainerd } from '../test/support/containerd.js';
import { SnapshotsClient, startSnapshotter } from '../test/support/snapshots-client.js';
import { writeBaseRootTar } from '../test/support/test-image.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';
import { benchBacking, mountFreshExt4 } from './lib/fresh-ext4.js';
import { startStargz } from './lib/stargz.js';

const runs = Math.max(3, Number(process.argv[2] ?? 5));
const scratch = mkdtempSync('/var/tmp/ovl2-bench-snap-');
const fs = mountFreshExt4(scratch, 8, benchBacking());
const cli = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`overlay2 ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** An image archive made by this package's own save: a busybox base and one layer from `fill`. */
function makeImage(name: string, fill: (dir: string) => void): string {
  const work = join(scratch, `img-${name}`);
  const home = join(work, 'home');
  const layer = join(work, 'layer');
  mkdirSync(layer, { recursive: true });
  fill(layer);
  const layerTar = join(work, 'layer.tar');
  spawnSync('tar', ['-C', layer, '-cf', layerTar, '.']);
  cli(home, 'create', 'base');
  cli(home, 'apply', 'base', '-i', writeBaseRootTar(work));
  cli(home, 'create', 'top', '--parent', 'base');
  cli(home, 'apply', 'top', '-i', layerTar);
  const archive = join(scratch, `${name}.tar`);
  cli(home, 'save', 'top', '-o', archive, '--tag', `bench/${name}:1`);
  rmSync(work, { recursive: true, force: true });
  return archive;
}

const images = {
  files5k: makeImage('files5k', (d) => {
    for (let i = 0; i < 50; i++) {
      mkdirSync(join(d, 'data', `d${i}`), { recursive: true });
      for (let j = 0; j < 100; j++) writeFileSync(join(d, 'data', `d${i}`, `f${j}`), `file ${i}/${j}\n`.repeat(1 + (j % 7)));
    }
  }),
  mb200: makeImage('mb200', (d) => {
    mkdirSync(join(d, 'blobs'));
    const chunk = Buffer.alloc(4 << 20);
    for (let i = 0; i < 50; i++) {
      for (let k = 0; k < chunk.length; k += 4) chunk.writeUInt32LE((i * 2654435761 + k * 40503) >>> 0, k);
      writeFileSync(join(d, 'blobs', `b${i}`), chunk);
    }
  }),
};

const ovl2Socket = join(scratch, 'ovl2.sock');
const stargzSocket = join(scratch, 'stargz.sock');
const ours = await startSnapshotter(join(scratch, 'ovl2-home'), ovl2Socket);
const stargz = await startStargz(stargzSocket, join(scratch, 'stargz-root'));
const snapshotters = ['overlayfs', 'ovl2', ...(stargz ? ['stargz'] : [])];
const proxies: Record<string, string> = { ovl2: ovl2Socket, ...(stargz ? { stargz: stargzSocket } : {}) };
const ctd: PrivateContainerd = await startContainerd(join(scratch, 'containerd'), { snapshotters: proxies });

/** sync, then wait (at most 10 s) until the disks have written nothing for 300 ms: a removed image's
 *  deletion and the kernel's writeback go on after the commands that caused them return, and would be
 *  charged to whichever import came next. (On OVERLAY2_BENCH_DISK=disk this does not remove the disk's
 *  own slowing down as an import follows an import: see bench/lib/fresh-ext4.ts.) */
async function quiesce(): Promise<void> {
  spawnSync('sync');
  const written = () => readFileSync('/proc/diskstats', 'utf8').split('\n')
    .map((l) => l.trim().split(/\s+/)).filter((f) => f.length > 10).reduce((n, f) => n + Number(f[9]) + Number(f[11]), 0);
  let last = written();
  for (let quiet = 0, t = 0; quiet < 3 && t < 100; t++) {
    await sleep(100);
    const now = written();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const results: Record<string, Record<string, number[]>> = {};
const leftOver: Record<string, number> = {};
const add = (what: string, sn: string, ms: number) => { ((results[what] ??= {})[sn] ??= []).push(ms); };

try {
  for (const [name, archive] of Object.entries(images)) {
    const ref = `docker.io/bench/${name}:1`;
    for (let r = 0; r < runs; r++) {
      // rotate the order each run: none always goes first after a GC
      const order = snapshotters.map((_, i) => snapshotters[(i + r) % snapshotters.length]!);
      for (const sn of order) {
        // each import starts on a settled disk: the one before's writeback and deletions are not charged to it
        await quiesce();
        add(`import ${name}`, sn, await timed(() => ctd.ctr(['images', 'import', '--snapshotter', sn, archive])));
        if (name === 'files5k') {
          await quiesce();
          add('run --rm true', sn, await timed(() => ctd.ctr(['run', '--rm', '--snapshotter', sn, ref, `b-${sn}-${r}`, '/bin/true'])));
        }
        await ctd.ctr(['images', 'rm', '--sync', ref]);
        await ctd.ctr(['content', 'prune', 'references'], { allowFail: true });
        // what the garbage collection left: a snapshot still there would let the next import skip its unpack
        const left = (await ctd.ctr(['snapshots', '--snapshotter', sn, 'ls'])).out.split('\n').slice(1).filter(Boolean).length;
        if (left > 0) leftOver[sn] = (leftOver[sn] ?? 0) + left;
        if (process.env.OVERLAY2_BENCH_VERBOSE) console.log(`round ${r} ${name} ${sn}: ${results[`import ${name}`]![sn]!.at(-1)!.toFixed(0)} ms, ${left} snapshots left`);
      }
    }
  }

  // usage of an active snapshot holding 50,000 files, and ls with 1,000 snapshots
  await ctd.ctr(['images', 'import', '--snapshotter', 'overlayfs', images.files5k]);
  for (const sn of snapshotters) {
    await ctd.ctr(['images', 'import', '--snapshotter', sn, images.files5k]);
    const parent = (await ctd.ctr(['snapshots', '--snapshotter', sn, 'ls'])).out.split('\n').slice(1).map((l) => l.split(/\s+/))
      .find((c) => c[2] === 'Committed' && c[1] !== '')?.[0];
    if (!parent) throw new Error(`no committed top snapshot on ${sn}`);
    const key = `usage-${sn}`;
    const mounts = await ctd.ctr(['snapshots', '--snapshotter', sn, 'prepare', key, parent]);
    void mounts;
    const target = join(scratch, `mnt-${sn}`);
    mkdirSync(target, { recursive: true });
    await ctd.ctr(['snapshots', '--snapshotter', sn, 'mount', target, key]).then((m) => run('sh', ['-c', m.out]));
    const gen = spawnSync('sh', ['-c', `cd ${target} && mkdir -p many && cd many && for d in $(seq 0 99); do mkdir d$d; (cd d$d && seq 0 499 | xargs touch && for f in $(seq 0 49); do echo data$f > $f; done); done`]);
    if (gen.status !== 0) throw new Error(`filling ${target}: ${gen.stderr}`);
    spawnSync('umount', [target]);
    for (let r = 0; r < runs; r++) add('usage 50k files', sn, await timed(() => ctd.ctr(['snapshots', '--snapshotter', sn, 'usage', key])));
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => ctd.ctr(['snapshots', '--snapshotter', sn, 'prepare', `many-${i + j}`, parent])));
    }
    for (let r = 0; r < runs; r++) add('ctr snapshots ls (1,000+)', sn, await timed(() => ctd.ctr(['snapshots', '--snapshotter', sn, 'ls'])));
    if (proxies[sn]) {
      const client = new SnapshotsClient(proxies[sn]!);
      for (let r = 0; r < runs; r++) add('List RPC (1,000+)', sn, await timed(() => client.list()));
      client.close();
    }
  }
} finally {
  await ctd.stop();
  await ours.stop();
  stargz?.stop();
  spawnSync('sh', ['-c', `grep ' ${scratch}/' /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l`]);
  fs.remove();
  rmSync(scratch, { recursive: true, force: true });
}

/** Ours ÷ the peer's time, run by run (the snapshotters take turns within a round, so a round's
 *  times saw the same machine): the median of those quotients, which drift between rounds does not move. */
function paired(ours: number[] = [], peer: number[] = []): string {
  const q = ours.slice(0, peer.length).map((t, i) => t / peer[i]!);
  return q.length === 0 ? '—' : `${median(q).toFixed(3)}× (${Math.min(...q).toFixed(2)}–${Math.max(...q).toFixed(2)})`;
}

const rows = Object.entries(results).map(([what, bySn]) => {
  const m = (sn: string) => median(bySn[sn] ?? []);
  return [what, fmtMs(m('ovl2')), fmtMs(m('overlayfs')), fmtMs(m('stargz')), ratio(m('overlayfs'), m('ovl2')), ratio(m('stargz'), m('ovl2')),
    paired(bySn.ovl2, bySn.overlayfs), paired(bySn.ovl2, bySn.stargz)];
});
console.log(`containerd ${spawnSync('containerd', ['--version'], { encoding: 'utf8' }).stdout.trim()}; a fresh ext4 (image on ${fs.backing === 'ram' ? 'RAM' : 'the disk'}); median of ${runs} runs, ms; ` +
  'paired: the median (and range) of ours ÷ theirs within each round');
if (Object.keys(leftOver).length > 0) console.log(`!! snapshots left after an image's removal (summed over rounds): ${JSON.stringify(leftOver)}`);
console.log(table(['operation', 'ovl2 (ours)', 'overlayfs (built-in)', 'stargz', 'built-in ÷ ours', 'stargz ÷ ours',
  'ours ÷ built-in, paired', 'ours ÷ stargz, paired'], rows));
