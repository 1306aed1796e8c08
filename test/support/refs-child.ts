// A second (third...) process on one home, for the cross-process reference tests. Opens the home,
// says "ready", waits for "go" on stdin (so every process starts its work at once), runs, and prints
// one JSON line of what it saw. Usage: node refs-child.js MODE HOME ARGS...
//   rounds HOME ID N        N sequential get/check/put of ID: after every get the returned dir must be
//                           an overlay mount showing the layer's file "own" (= ID)
//   load HOME OPS SEED IDS  OPS concurrent get/put over the comma-separated IDS, each holding its mount
//                           over 0-4 event-loop turns and reading "own" through it
//   hold HOME ID            get ID, print the JSON line, and hold the mount until killed
//   create-on HOME          for each line "I" on stdin after "go": create kI on pI, print
//                           {"i":I,"code":"ok"|error code}
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Overlay2Driver } from '../../src/driver.js';
import { overlayMountsAt } from '../../src/mount/stale.js';
import { rng } from './rng.js';

const [mode, home, ...args] = process.argv.slice(2);
const driver = await Overlay2Driver.init(home!);
process.stdout.write('ready\n');
let input = '';
const lines: string[] = [];
let wake: (() => void) | null = null;
process.stdin.on('data', (b: Buffer) => {
  input += b;
  let nl: number;
  while ((nl = input.indexOf('\n')) >= 0) { lines.push(input.slice(0, nl)); input = input.slice(nl + 1); }
  wake?.();
});
async function nextLine(): Promise<string> {
  while (lines.length === 0) await new Promise<void>((r) => { wake = r; });
  return lines.shift()!;
}
while ((await nextLine()) !== 'go') { /* wait for the start */ }

const failures: string[] = [];
let errors = 0, ebusy = 0, bad = 0;
const note = (what: string): void => { bad++; if (failures.length < 20) failures.push(what); };

/** The layer is mounted at `root` and shows its own file: what a caller of get() relies on. */
function check(id: string, root: string): void {
  if (root !== join(home!, id, 'merged')) return note(`${id}: get returned ${root}`);
  if (overlayMountsAt(root) < 1) return note(`${id}: ${root} is not mounted`);
  let own = '';
  try { own = readFileSync(join(root, 'own'), 'utf8'); } catch (e) { own = (e as Error).message; }
  if (own !== id) note(`${id}: read ${JSON.stringify(own)} through the mount`);
}

async function getCheckPut(id: string, hold: number): Promise<void> {
  try {
    const root = await driver.get(id);
    check(id, root);
    for (let i = 0; i < hold; i++) await new Promise((r) => setImmediate(r));
    check(id, root);
    await driver.put(id);
  } catch (e) {
    errors++;
    const err = e as Error & { code?: string };
    if (err.code === 'EBUSY' || /EBUSY/.test(err.message)) ebusy++;
    note(`${id}: ${err.code}: ${err.message}`);
  }
}

switch (mode) {
  case 'rounds': {
    const [id, n] = [args[0]!, Number(args[1])];
    for (let i = 0; i < n; i++) await getCheckPut(id, 0);
    break;
  }
  case 'load': {
    const [ops, seed, ids] = [Number(args[0]), Number(args[1]), args[2]!.split(',')];
    const r = rng(seed);
    const plan = [...Array(ops).keys()].map(() => ({ id: ids[Math.floor(r() * ids.length)]!, hold: Math.floor(r() * 5) }));
    await Promise.all(plan.map(({ id, hold }) => getCheckPut(id, hold)));
    break;
  }
  case 'hold':
    check(args[0]!, await driver.get(args[0]!));
    process.stdout.write(JSON.stringify({ failures, bad, errors, ebusy, pid: process.pid }) + '\n');
    setInterval(() => undefined, 1000);
    await new Promise(() => undefined);
    break;
  case 'create-on':
    for (;;) {
      const i = await nextLine();
      if (i === 'end') break;
      let code = 'ok';
      try { await driver.create(`k${i}`, `p${i}`); } catch (e) { code = (e as { code?: string }).code ?? String(e); }
      process.stdout.write(JSON.stringify({ i: Number(i), code }) + '\n');
    }
    break;
  default:
    throw new Error(`refs-child: unknown mode ${mode}`);
}
process.stdout.write(JSON.stringify({ failures, bad, errors, ebusy, pid: process.pid }) + '\n');
process.exit(0);
