// Peak RSS of one scan operation, each in a fresh process (issue #12: under 128 MiB whatever the
// layer size): diffSize, diff (export read to the end by a counting sink) and native changes, on
// the data sets the other benches make (bench/.data). VmHWM is the process's own high-water mark,
// Node's baseline included (`node -e 0` is measured as the floor).
//   node dist/bench/op-rss.js            every op on every set that exists
//   node dist/bench/op-rss.js --one OP DIR [LOWER]   (internal: one op, prints JSON)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { directorySize } from '../src/size/directory-size.js';
import { exportLayer } from '../src/export/export.js';
import { changesNative } from '../src/changes/native.js';
import { IdMappings } from '../src/idmap.js';
import { peakRss } from './lib/peak-rss.js';
import { table } from './lib/stats.js';
import { DATA } from './lib/trees.js';

const hwmKiB = () => Number(/^VmHWM:\s*(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);

if (process.argv[2] === '--one') {
  const [op, dir, lower] = process.argv.slice(3) as [string, string, string | undefined];
  let what = '';
  if (op === 'diffsize') what = String(await directorySize(dir));
  else if (op === 'diff') {
    let bytes = 0;
    for await (const c of exportLayer(dir, { userxattr: false, idMappings: new IdMappings() })) bytes += (c as Buffer).length;
    what = `${bytes} tar bytes`;
  } else if (op === 'changes') what = `${(await changesNative(dir, lower ? [lower] : [], { userxattr: false })).length} changes`;
  console.log(JSON.stringify({ what, hwmKiB: hwmKiB() }));
  process.exit(0);
}

const sets: Array<{ name: string; dir: string; lower?: string }> = [
  { name: '50k small files in 100 dirs (diff bench)', dir: join(DATA, 'diff', 'small', 'diff') },
  { name: 'flat 50k files', dir: join(DATA, 'flat-50000') },
  { name: '500 dirs × 100 files', dir: join(DATA, 'dirs-500x100') },
  { name: '3 × 300 MiB files', dir: join(DATA, 'large-3x300') },
  { name: '50k new files over debian-minbase', dir: join(DATA, 'upper-50000-debian-minbase'), lower: join(DATA, 'debian-bookworm-minbase') },
  // a big real tree as a layer (1.3 GB of tar here): many chunks, files of every size
  { name: 'host /usr/share', dir: '/usr/share' },
];
const floor = await peakRss(process.execPath, ['-e', 'console.log(JSON.stringify({hwmKiB: Number(/^VmHWM:\\s*(\\d+)/m.exec(require("fs").readFileSync("/proc/self/status","utf8"))[1])}))']);
const rows: string[][] = [];
for (const s of sets) {
  if (!existsSync(s.dir)) continue;
  const cells = [s.name];
  for (const op of ['diffsize', 'diff', 'changes']) {
    const r = await peakRss(process.execPath, [process.argv[1]!, '--one', op, s.dir, ...(s.lower ? [s.lower] : [])]);
    cells.push(r.exitCode === 0 ? `${r.selfMiB.toFixed(1)} (${(JSON.parse(r.stdout) as { what: string }).what})` : `failed (${r.exitCode})`);
  }
  rows.push(cells);
}
console.log(`peak RSS (VmHWM, MiB) of one operation in a fresh process; node -e 0: ${floor.selfMiB.toFixed(1)} MiB\n`);
console.log(table(['layer', 'diffSize', 'diff → counting sink', 'changes (native; lower as given, else none)'], rows));
