// A hostile process for the removal tests: inside a directory it holds open, it exchanges the names
// `racedir` (a directory) and `link` (a symlink to a victim outside the store) with
// renameat2(RENAME_EXCHANGE) as fast as it can, so any remover that checks a name and then uses it
// by path sees the other one. Usage: node exchange-racer.js <where> <stopFile>
//   where = DIR              race in DIR (reopened whenever it reappears)
//   where = staging:LAYERDIR race in whichever .staging-diff-* dir LAYERDIR holds
// Prints "ready" once running; on finding stopFile (or losing its parent), prints the number of
// successful exchanges and exits.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { loadShim } from '../../src/native/shim.js';
import { RENAME_EXCHANGE } from '../../src/native/constants.js';

const [where, stopFile] = process.argv.slice(2);
const shim = loadShim();
const stagingOf = where.startsWith('staging:') ? where.slice('staging:'.length) : null;

function findDir(): string | null {
  if (stagingOf === null) return where;
  try {
    const name = fs.readdirSync(stagingOf).find((n) => n.startsWith('.staging-diff-'));
    return name === undefined ? null : join(stagingOf, name);
  } catch {
    return null;
  }
}

const parent = process.ppid;
/** Stop when told to, or when the test that started us is gone (never spin on as an orphan). */
const stopped = (): boolean => fs.existsSync(stopFile) || process.ppid !== parent;

let swaps = 0;
let polls = 0;
process.stdout.write('ready\n');
outer: for (;;) {
  if ((++polls & 63) === 0 && stopped()) break;
  const dir = findDir();
  if (dir === null) continue;
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    continue;
  }
  // Swap until the names have been gone a while (the dir was deleted or not yet filled).
  for (let misses = 0; misses < 2000;) {
    if ((++polls & 1023) === 0 && stopped()) { fs.closeSync(fd); break outer; }
    try {
      shim.renameat2(fd, 'racedir', fd, 'link', RENAME_EXCHANGE);
      swaps++;
      misses = 0;
    } catch {
      misses++;
    }
  }
  fs.closeSync(fd);
}
process.stdout.write(`${swaps}\n`);
