// One applyLayer in a process of its own, for bench/apply.ts: its peak RSS (VmHWM) and how the CPU
// time splits between the main thread and the others (the libuv pool running file batches).
//   node dist/bench/apply-one.js TAR LAYER_DIR   (LAYER_DIR/diff must exist and be empty)
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { applyLayer } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { threadCpu } from './lib/thread-cpu.js';

const [tar, layer] = process.argv.slice(2);
const before = threadCpu();
const t0 = performance.now();
await applyLayer(layer!, fs.createReadStream(tar!), { userxattr: false, idMappings: new IdMappings() });
const ms = performance.now() - t0;
const cpu = threadCpu(before);
const hwmKiB = Number(/^VmHWM:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
console.log(JSON.stringify({ ms, mainCpuMs: cpu.mainMs, otherCpuMs: cpu.otherMs, hwmKiB }));
