// changesBetween(): moby's ChangesDirs for two plain directories, through the public API, with the
// native scanner and with fast-glob (what runs where the shim is not built).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { mkdirSync, writeFileSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { changesBetween, type Change } from '../src/index.js';
import { scratchRoot } from './support/env.js';

const scratch = scratchRoot('ovl2-between-');
test.after(() => scratch.remove());

test('the changes between two trees, the same from both scanners', async () => {
  const dir = scratch.fresh();
  const oldDir = join(dir, 'old');
  const newDir = join(dir, 'new');
  for (const d of [oldDir, newDir]) {
    mkdirSync(join(d, 'etc'), { recursive: true });
    writeFileSync(join(d, 'etc', 'same'), 'x');
    writeFileSync(join(d, 'etc', 'hostname'), 'a');
    writeFileSync(join(d, 'gone'), 'bye');
    for (const f of ['etc/same', 'etc/hostname', 'gone', 'etc', '']) utimesSync(join(d, f), 1_700_000_000, 1_700_000_000);
  }
  writeFileSync(join(newDir, 'etc', 'hostname'), 'bb');
  writeFileSync(join(newDir, 'added'), '');
  rmSync(join(newDir, 'gone'));
  const expected = [
    { path: '/added', kind: 'A' }, { path: '/etc', kind: 'C' }, { path: '/etc/hostname', kind: 'C' }, { path: '/gone', kind: 'D' },
  ];
  const plain = (list: Change[]) => list.map((c) => {
    assert.ok(c.pathBytes.equals(Buffer.from(c.path)), c.path);
    return { path: c.path, kind: c.kind };
  });
  assert.equal(plain(await changesBetween(newDir, oldDir)), expected);
  assert.equal(plain(await changesBetween(newDir, oldDir, { scanner: 'portable' })), expected);
  const fromNothing = await changesBetween(newDir, null, { scanner: 'portable' });
  assert.equal(fromNothing.map((c) => c.path), ['/added', '/etc', '/etc/hostname', '/etc/same']);
  assert.ok(fromNothing.every((c) => c.kind === 'A'));
});

test.run();
