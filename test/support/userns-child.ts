// Runs inside `unshare --user --map-root-user --mount`: the driver in a user namespace, where
// overlay keeps its xattrs under user.overlay.* (userxattr). Prints one JSON line of results.
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Overlay2Driver } from '../../src/driver.js';
import type { Change } from '../../src/changes/change.js';

const home = process.argv[2];
const driver = await Overlay2Driver.init(home);
await driver.create('base');
mkdirSync(join(home, 'base', 'diff', 'dir'));
writeFileSync(join(home, 'base', 'diff', 'dir', 'old'), 'old');
writeFileSync(join(home, 'base', 'diff', 'gone'), 'x');
await driver.create('app', 'base');
const root = await driver.get('app');
rmSync(join(root, 'gone'));
rmSync(join(root, 'dir'), { recursive: true });
mkdirSync(join(root, 'dir'));
writeFileSync(join(root, 'dir', 'new'), 'new');
await driver.put('app');
const chunks: Buffer[] = [];
for await (const c of await driver.diff('app', 'base')) chunks.push(c as Buffer);
await driver.create('copy', 'base');
await driver.applyDiff('copy', 'base', Readable.from([Buffer.concat(chunks)]));
const plain = (list: Change[]) => list.map((c) => ({ path: c.path, kind: c.kind }));
console.log(JSON.stringify({
  status: Object.fromEntries(driver.status()),
  native: plain(await driver.changes('app', 'base')),
  naive: plain(await driver.changesNaive('app', 'base')),
  copy: plain(await driver.changes('copy', 'base')),
}));
await driver.cleanup();
