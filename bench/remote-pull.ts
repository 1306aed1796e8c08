// Remote layers, measured as a node sees them: a 3-layer image (a 200 MB base of incompressible data, two
// small layers) in a private docker-registry on 127.0.0.1, its base published unpacked in a DUCC-style
// tree; then, interleaved in one run, (a) CRI's PullImage onto our snapshotter with `--remote-layers` and
// (b) the plain pull onto containerd's built-in overlayfs (`ctr images pull`, the same unpacker without
// CRI's labels), each time from an empty content store. Time and the bytes the registry served (its
// access log) side by side.
//   node dist/bench/remote-pull.js [runs=5]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync, readdirSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI_BIN } from '../test/support/cli.js';
import { writeBaseRootTar } from '../test/support/test-image.js';
import { startContainerd, run, sleep, uniqueName } from '../test/support/containerd.js';
import { startSnapshotter } from '../test/support/snapshots-client.js';
import { startRegistry, SKOPEO } from '../test/support/registry.js';
import { CriImageClient } from '../test/support/cri-client.js';
import { criToml, servedBlobs } from '../test/support/cri-setup.js';
import { median, fmtMs, ratio, table } from './lib/stats.js';

const runs = Math.max(3, Number(process.argv[2] ?? 5));
const scratch = mkdtempSync('/var/tmp/ovl2-bench-remote-');
const cli = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI_BIN, '--home', home, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`overlay2 ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const K8S = 'k8s.io';

// the image
const img = join(scratch, 'img');
const store = join(img, 'home');
const baseDir = join(img, 'base-root');
mkdirSync(img, { recursive: true });
spawnSync('sh', ['-c', `mkdir -p ${baseDir} && tar -C ${baseDir} -xf ${writeBaseRootTar(img)} && mkdir -p ${baseDir}/opt/data`]);
const chunk = Buffer.alloc(1 << 20);
for (let i = 0; i < 50; i++) {
  const fd = openSync(join(baseDir, 'opt', 'data', `blob${i}`), 'w');
  for (let j = 0; j < 4; j++) writeSync(fd, randomFillSync(chunk));
  closeSync(fd);
}
spawnSync('tar', ['-C', baseDir, '-cf', join(img, 'base.tar'), '.']);
cli(store, 'create', 'base');
cli(store, 'apply', 'base', '-i', join(img, 'base.tar'));
let parent = 'base';
for (const name of ['mid', 'top']) {
  const d = join(img, name);
  mkdirSync(join(d, 'app'), { recursive: true });
  writeFileSync(join(d, 'app', name), `${name}\n`);
  spawnSync('tar', ['-C', d, '-cf', `${d}.tar`, '.']);
  cli(store, 'create', name, '--parent', parent);
  cli(store, 'apply', name, '-i', `${d}.tar`);
  parent = name;
}
const archive = join(img, 'image.tar');
cli(store, 'save', 'top', '-o', archive, '--tag', 'bench/remote:1');

const registry = await startRegistry(join(scratch, 'registry'));
const ref = `${registry.host}/bench/remote:1`;
await run(SKOPEO, ['copy', '--insecure-policy', '--dest-tls-verify=false', '--dest-compress', `docker-archive:${archive}:bench/remote:1`, `docker://${ref}`]);
const manifest = JSON.parse((await run(SKOPEO, ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).out) as { layers: { digest: string; size: number }[] };
const base = manifest.layers[0]!.digest;
const cvmfs = join(scratch, 'cvmfs');
const layerfs = join(cvmfs, '.layers', base.slice(7, 9), base.slice(7), 'layerfs');
mkdirSync(layerfs, { recursive: true });
await run('cp', ['-a', `${join(store, 'base', 'diff')}/.`, layerfs]);

const socket = join(scratch, 'ovl2.sock');
const home = join(scratch, 'ovl2-home');
const snap = await startSnapshotter(home, socket, ['--remote-layers', cvmfs]);
const dir = join(scratch, 'ctd');
const ctd = await startContainerd(dir, { cri: true, snapshotters: { ovl2: socket }, toml: criToml(dir, 'ovl2', registry.host) });
const cri = new CriImageClient(ctd.address);

const times: Record<string, number[]> = { ours: [], builtin: [] };
const bytes: Record<string, number[]> = { ours: [], builtin: [] };
async function clean(): Promise<void> {
  const names = (await ctd.ctr(['images', 'ls', '-q'], { namespace: K8S })).out.split('\n').filter(Boolean);
  if (names.length) await ctd.ctr(['images', 'rm', '--sync', ...names], { namespace: K8S });
  for (let i = 0; i < 40 && readdirSync(home).some((n) => n !== 'l' && !n.startsWith('.')); i++) await sleep(250);
}
try {
  for (let r = 0; r < runs; r++) {
    for (const which of r % 2 ? ['builtin', 'ours'] : ['ours', 'builtin']) {
      await clean();
      const mark = registry.log().length;
      const t = performance.now();
      if (which === 'ours') await cri.pull(ref);
      else await ctd.ctr(['images', 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref], { namespace: K8S });
      times[which]!.push(performance.now() - t);
      bytes[which]!.push([...servedBlobs(registry.log().slice(mark)).values()].reduce((a, b) => a + b, 0));
      // the image works: a container reads a file of each layer
      const id = uniqueName('check');
      const out = await ctd.ctr(['run', '--rm', '--snapshotter', which === 'ours' ? 'ovl2' : 'overlayfs', ref, id, 'sh', '-c', 'cat /app/mid /app/top; ls /opt/data | wc -l'], { namespace: K8S });
      if (out.out.replace(/\s+/g, ' ').trim() !== 'mid top 50') throw new Error(`${which}: unexpected container output ${JSON.stringify(out.out)}`);
    }
  }
} finally {
  cri.close();
  await ctd.stop();
  await snap.stop();
  await registry.stop();
  rmSync(scratch, { recursive: true, force: true });
}

const mib = (n: number) => (n / (1 << 20)).toFixed(2);
const layerSizes = manifest.layers.map((l) => mib(l.size)).join(' + ');
console.log(`image: 3 layers, ${layerSizes} MiB compressed; median of ${runs} pulls each from an empty content store`);
console.log(`blob sizes (bytes): ${manifest.layers.map((l) => l.size).join(', ')}`);
console.log(table(['pull', 'time (ms)', 'registry served (bytes)', 'plain ÷ this (time)'], [
  ['CRI → ovl2 --remote-layers (base published)', fmtMs(median(times.ours!)), String(median(bytes.ours!)), ratio(median(times.builtin!), median(times.ours!))],
  ['ctr pull → built-in overlayfs (plain)', fmtMs(median(times.builtin!)), String(median(bytes.builtin!)), '1.0×'],
]));
