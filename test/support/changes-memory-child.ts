// Child of test/changes-stream.test.ts: the native change walk over UPPER (lower dirs after it) in
// a fresh process, the list drained chunk by chunk and dropped. Prints the number of changes, the
// WASM core's memory at the end (it only grows, so that is its peak) and the process's VmHWM.
import { readFileSync } from 'node:fs';
import { closeSync } from 'node:fs';
import { acquireCore } from '../../src/core/wasm.js';
import { loadShim } from '../../src/native/shim.js';
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH } from '../../src/native/constants.js';
import { walkUpper, shimAccess, LOOKUP_FLAGS } from '../../src/changes/native.js';

const [upper, ...lowers] = process.argv.slice(2) as [string, ...string[]];
const shim = loadShim();
const open = (p: string) => shim.openat2(AT_FDCWD, p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
const core = acquireCore();
const roots = lowers.map(open);
const upperRoot = open(upper);
let changes = 0;
let last = '';
for await (const chunk of walkUpper(core, shimAccess(shim), upperRoot, roots, LOOKUP_FLAGS)) {
  changes += chunk.length;
  last = chunk[chunk.length - 1]!.path;
}
for (const fd of [...roots, upperRoot]) closeSync(fd);
const hwmKiB = Number(/^VmHWM:\s*(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
console.log(JSON.stringify({ changes, last, wasmBytes: core.memory.buffer.byteLength, hwmKiB }));
