// The driver inside a user namespace (rootless-style): userxattr is detected and used, and the
// diff engine reads user.overlay.* markers — native == naive, diff → apply round trip.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { mountTest, tempDir, removeTree, testIf } from './support/env.js';

const probe = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'true']);
const canUnshare = probe.status === 0;
const test = mountTest(testIf(canUnshare, 'the user-namespace test', `unshare --user failed (${probe.stderr?.toString().trim() || probe.error?.message})`));

test('in a user namespace: userxattr on, whiteouts and opaque dirs found through user.overlay.*', () => {
  const base = tempDir();
  try {
    chmodSync(base, 0o777);
    const child = join(process.cwd(), 'dist', 'test', 'support', 'userns-child.js');
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', process.execPath, child, join(base, 'home')], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    assert.is(out.status.userxattr, 'true');
    const expected = [
      { path: '/dir', kind: 'C' }, { path: '/dir/new', kind: 'A' }, { path: '/dir/old', kind: 'D' }, { path: '/gone', kind: 'D' },
    ];
    assert.equal(out.naive, expected);
    assert.equal(out.native, expected);
    assert.equal(out.copy, expected);
  } finally {
    removeTree(base);
  }
});

test.run();
