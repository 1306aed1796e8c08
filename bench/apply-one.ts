// One applyLayer in a process of its own, for bench/apply.ts: its peak RSS (VmHWM) and how the CPU
// time splits between the main thread and the others (the libuv pool running file batches).
//   node dist/bench/apply-one.js TAR LAYER_DIR   (LAYER_DIR/diff must exist and be empty)
//   OVERLAY2_BASELINE=DIR (another built checkout, bench/lib/baseline.ts): that build's applyLayer instead
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { applyLayer } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { threadTimes, threadCpuSince } from './lib/thread-cpu.js';
import { baselineModule } from './lib/baseline.js';

const [tar, layer] = process.argv.slice(2);
const apply = (await baselineModule<{ applyLayer: typeof applyLayer }>('src/apply/apply.js'))?.applyLayer ?? applyLayer;
const before = threadTimes();
const t0 = performance.now();
await apply(layer!, fs.createReadStream(tar!), { userxattr: false, idMappings: new IdMappings() });
const ms = performance.now() - t0;
const cpu = threadCpuSince(before);
const hwmKiB = Number(/^VmHWM:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
console.log(JSON.stringify({ ms, mainCpuMs: cpu.mainMs, otherCpuMs: cpu.poolMs, hwmKiB }));
