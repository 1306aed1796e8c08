// End-to-end change lists on real overlay stacks: every kind of change made through the merged dir,
// then changesNative(upper, lowers) must deep-equal changesNaive(view of layer, view of parent) —
// moby's ChangesDirs over the two mounts — with a few expected lines spot-checked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadShim } from '../src/native/shim.js';
import { AT_FDCWD } from '../src/native/constants.js';
import { changesNative, NeedsNaive } from '../src/changes/native.js';
import { Stack, lines } from './changes-fixtures.js';
import { mountTest, tempDir, removeTree, testIf, detectedFeatures, whyNoLowerdirPlus } from './support/env.js';
import { rng } from './support/rng.js';

const it = mountTest(test);
const features = await detectedFeatures();
const itPlus = mountTest(testIf(features?.lowerdirPlus === true, 'the 135-layer changes case', whyNoLowerdirPlus(features)));
const shim = loadShim();
const CAPS = Buffer.from([0, 0, 0, 2, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // cap_net_bind_service, v2

function fillBase(dir: string): void {
  const w = (p: string, s: string, mode = 0o644) => {
    fs.mkdirSync(join(dir, p, '..'), { recursive: true });
    fs.writeFileSync(join(dir, p), s, { mode });
  };
  w('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  w('etc/hosts', '127.0.0.1 localhost\n');
  w('etc/conf.d/a.conf', 'a=1\n');
  w('etc/conf.d/b.conf', 'b=2\n');
  w('bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  fs.symlinkSync('tool', join(dir, 'bin/sh'));
  w('usr/share/doc/pkg/README', 'readme\n');
  w('usr/lib/lib.so', 'ELF...');
  fs.linkSync(join(dir, 'usr/lib/lib.so'), join(dir, 'usr/lib/lib.so.1'));
  fs.mkdirSync(join(dir, 'var/log'), { recursive: true });
  w('var/log/old.log', 'x\n');
  fs.mkdirSync(join(dir, 'var/empty'));
  w('top.txt', 'top\n');
  for (let i = 0; i < 50; i++) w(`data/f${i}`, `file ${i}\n`);
  // fixed times, so that a copy-up is recognisably "no change"
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const q = join(p, e.name);
      if (e.isDirectory()) walk(q);
      if (!e.isSymbolicLink()) fs.utimesSync(q, 1_600_000_000, 1_600_000_000);
    }
  };
  walk(dir);
}

/** One layer over the base with `edit`; asserts native == naive and returns the lines. */
async function oneLayer(edit: (m: string) => void, options: string[] = []): Promise<{ out: string[]; upper: string }> {
  const dir = tempDir('ovl2-changes-');
  try {
    const stack = new Stack(dir, options);
    stack.base(fillBase);
    const upper = await stack.layer(edit);
    const { native, naive } = await stack.compare();
    assert.equal(lines(native), lines(naive), 'native == naive');
    return { out: lines(native), upper: fs.readdirSync(upper).join(',') };
  } finally {
    removeTree(dir);
  }
}

function includes(out: string[], want: string[]): void {
  for (const w of want) assert.ok(out.includes(w), `expected "${w}" in ${JSON.stringify(out)}`);
}

it('add files at the root and inside lower directories', async () => {
  const { out } = await oneLayer((m) => {
    fs.writeFileSync(join(m, 'new.txt'), 'n');
    fs.writeFileSync(join(m, 'etc/new.conf'), 'n');
    fs.mkdirSync(join(m, 'opt/app'), { recursive: true });
    fs.writeFileSync(join(m, 'opt/app/run'), 'r');
  });
  assert.equal(out, ['C /etc', 'A /etc/new.conf', 'A /new.txt', 'A /opt', 'A /opt/app', 'A /opt/app/run']);
});

it('modify content, chmod, chown, touch', async () => {
  const { out } = await oneLayer((m) => {
    fs.appendFileSync(join(m, 'etc/passwd'), 'user:x:1000:1000::/home/user:/bin/sh\n');
    fs.chmodSync(join(m, 'bin/tool'), 0o700);
    fs.chownSync(join(m, 'etc/hosts'), 1000, 1000);
    fs.utimesSync(join(m, 'top.txt'), 1_700_000_000, 1_700_000_000);
  });
  assert.equal(out, ['C /bin', 'C /bin/tool', 'C /etc', 'C /etc/hosts', 'C /etc/passwd', 'C /top.txt']);
});

it('rm of a file and rm -r of a directory', async () => {
  const { out } = await oneLayer((m) => {
    fs.rmSync(join(m, 'etc/hosts'));
    fs.rmSync(join(m, 'usr/share'), { recursive: true });
  });
  assert.equal(out, ['C /etc', 'D /etc/hosts', 'C /usr', 'D /usr/share']);
});

it('rm -r of a directory then mkdir of the same name (opaque)', async () => {
  const { out } = await oneLayer((m) => {
    fs.rmSync(join(m, 'etc/conf.d'), { recursive: true });
    fs.mkdirSync(join(m, 'etc/conf.d'));
    fs.writeFileSync(join(m, 'etc/conf.d/c.conf'), 'c');
  });
  includes(out, ['D /etc/conf.d/a.conf', 'D /etc/conf.d/b.conf', 'A /etc/conf.d/c.conf', 'C /etc/conf.d']);
});

it('file → directory and directory → file', async () => {
  const { out } = await oneLayer((m) => {
    fs.rmSync(join(m, 'top.txt'));
    fs.mkdirSync(join(m, 'top.txt'));
    fs.writeFileSync(join(m, 'top.txt/inner'), 'i');
    fs.rmSync(join(m, 'var/log'), { recursive: true });
    fs.writeFileSync(join(m, 'var/log'), 'now a file');
  });
  assert.equal(out, ['C /top.txt', 'A /top.txt/inner', 'C /var', 'C /var/log']);
});

it('mv of a lower file and of a lower directory (copy + whiteout with redirect_dir=off)', async () => {
  const { out } = await oneLayer((m) => {
    execFileSync('mv', [join(m, 'top.txt'), join(m, 'moved.txt')]);
    execFileSync('mv', [join(m, 'etc/conf.d'), join(m, 'etc/conf2.d')]);
  });
  includes(out, ['A /moved.txt', 'D /top.txt', 'C /etc', 'D /etc/conf.d', 'A /etc/conf2.d', 'A /etc/conf2.d/a.conf']);
});

it('hardlinks to a lower file and to a new file', async () => {
  const { out } = await oneLayer((m) => {
    fs.linkSync(join(m, 'bin/tool'), join(m, 'bin/tool2'));
    fs.writeFileSync(join(m, 'bin/fresh'), 'f');
    fs.linkSync(join(m, 'bin/fresh'), join(m, 'bin/fresh2'));
    fs.linkSync(join(m, 'usr/lib/lib.so'), join(m, 'usr/lib/lib.so.2'));
  });
  assert.equal(out, ['C /bin', 'A /bin/fresh', 'A /bin/fresh2', 'A /bin/tool2', 'C /usr', 'C /usr/lib', 'A /usr/lib/lib.so.2']);
});

it('symlink retarget', async () => {
  const { out } = await oneLayer((m) => {
    fs.rmSync(join(m, 'bin/sh'));
    fs.symlinkSync('/usr/bin/dash', join(m, 'bin/sh'));
  });
  assert.equal(out, ['C /bin', 'C /bin/sh']);
});

it('a directory of more than one lookup batch of copied-up files: only the changed ones (their stat read in the upper dir)', async () => {
  const dir = tempDir('ovl2-changes-bigdir-');
  try {
    const stack = new Stack(dir);
    const n = 4500; // over LOOKUP_MAX_NAMES (4096): the upper dir's lookups come in two batches
    stack.base((b) => {
      fillBase(b);
      fs.mkdirSync(join(b, 'big'));
      fs.writeFileSync(join(b, 'big', 'f0'), 'x');
      for (let i = 1; i < n; i++) fs.linkSync(join(b, 'big', 'f0'), join(b, 'big', `f${i}`));
    });
    await stack.layer((m) => {
      // every file copied up unchanged (an open for writing), every 700th chmod'ed, a few added
      for (let i = 0; i < n; i++) fs.closeSync(fs.openSync(join(m, 'big', `f${i}`), 'r+'));
      for (let i = 0; i < n; i += 700) fs.chmodSync(join(m, 'big', `f${i}`), 0o600);
      for (let i = 0; i < 3; i++) fs.writeFileSync(join(m, 'big', `new${i}`), 'n');
    });
    const { native, naive } = await stack.compare();
    assert.equal(lines(native), lines(naive), 'native == naive');
    const chmodded = Array.from({ length: Math.ceil(n / 700) }, (_, k) => `C /big/f${k * 700}`);
    assert.equal(lines(native).sort(), ['C /big', ...chmodded, 'A /big/new0', 'A /big/new1', 'A /big/new2'].sort());
    assert.is(fs.readdirSync(join(stack.top, 'big')).length, n + 3, 'every file was copied up');
  } finally {
    removeTree(dir);
  }
});

it('setting security.capability on a lower file', async () => {
  const { out } = await oneLayer((m) => shim.lsetxattr(join(m, 'bin/tool'), 'security.capability', CAPS, 0));
  assert.equal(out, ['C /bin', 'C /bin/tool']);
});

// moby reads security.capability on EVERY entry; the scanner contract (FLAG_CAPS) covers regular
// files only, so a capability set on a directory or symlink is invisible until the shim reads it there.
it('security.capability on a directory and on a symlink (moby compares every entry)', async () => {
  const { out } = await oneLayer((m) => {
    shim.lsetxattr(join(m, 'etc/conf.d'), 'security.capability', CAPS, 0);
    shim.lsetxattr(join(m, 'bin/sh'), 'security.capability', CAPS, 0);
  });
  assert.equal(out, ['C /bin', 'C /bin/sh', 'C /etc', 'C /etc/conf.d']);
});

it('open for write without a change: copied up, no change', async () => {
  const { out, upper } = await oneLayer((m) => {
    fs.closeSync(fs.openSync(join(m, 'etc/hosts'), 'r+'));
    fs.closeSync(fs.openSync(join(m, 'usr/share/doc/pkg/README'), 'r+'));
  });
  assert.ok(upper.includes('etc') && upper.includes('usr'), `copy-up happened (${upper})`);
  assert.equal(out, []);
});

it("a block device over a lower directory: C and a D per old child (moby's dir-like rule)", async () => {
  const { out } = await oneLayer((m) => {
    fs.rmSync(join(m, 'etc/conf.d'), { recursive: true });
    shim.mknodat(AT_FDCWD, join(m, 'etc/conf.d'), 0o060000 | 0o600, 7, 0);
  });
  assert.equal(out, ['C /etc', 'C /etc/conf.d', 'D /etc/conf.d/a.conf', 'D /etc/conf.d/b.conf']);
});

it('everything at once', async () => {
  const { out } = await oneLayer((m) => {
    fs.writeFileSync(join(m, 'data/new'), 'n');
    fs.rmSync(join(m, 'data/f7'));
    fs.appendFileSync(join(m, 'data/f8'), 'more');
    fs.chmodSync(join(m, 'data/f9'), 0o600);
    fs.rmSync(join(m, 'usr'), { recursive: true });
    fs.mkdirSync(join(m, 'usr/lib'), { recursive: true });
    fs.writeFileSync(join(m, 'usr/lib/lib.so'), 'ELF...');
    fs.mkdirSync(join(m, 'var/empty/sub'));
    execFileSync('mkfifo', [join(m, 'var/fifo')]);
    shim.lsetxattr(join(m, 'data/f10'), 'security.capability', CAPS, 0);
    fs.closeSync(fs.openSync(join(m, 'data/f11'), 'r+'));
  });
  includes(out, ['A /data/new', 'D /data/f7', 'C /data/f8', 'C /data/f9', 'C /data/f10', 'D /usr/share', 'A /var/fifo', 'A /var/empty/sub']);
  assert.not.ok(out.includes('C /data/f11'));
});

it('several layers with whiteouts and opaque dirs in the lowers; every layer against its parent', async () => {
  const dir = tempDir('ovl2-changes-multi-');
  try {
    const stack = new Stack(dir);
    stack.base(fillBase);
    const steps: Array<(m: string) => void> = [
      (m) => {
        fs.rmSync(join(m, 'etc/hosts'));
        fs.rmSync(join(m, 'usr/share'), { recursive: true });
        fs.rmSync(join(m, 'etc/conf.d'), { recursive: true });
        fs.mkdirSync(join(m, 'etc/conf.d'));
        fs.writeFileSync(join(m, 'etc/conf.d/c.conf'), 'c');
        fs.mkdirSync(join(m, 'new/dir'), { recursive: true });
        fs.writeFileSync(join(m, 'new/dir/file'), 'f');
        fs.chmodSync(join(m, 'bin/tool'), 0o750);
      },
      (m) => {
        fs.writeFileSync(join(m, 'etc/hosts'), 'recreated');
        fs.mkdirSync(join(m, 'usr/share'));
        fs.writeFileSync(join(m, 'usr/share/new'), 'n');
        fs.rmSync(join(m, 'new/dir'), { recursive: true });
        fs.appendFileSync(join(m, 'etc/conf.d/c.conf'), 'more');
      },
      (m) => {
        fs.rmSync(join(m, 'etc'), { recursive: true });
        fs.mkdirSync(join(m, 'etc'));
        fs.writeFileSync(join(m, 'etc/passwd'), 'root:x:0:0::/:/bin/false\n');
        fs.utimesSync(join(m, 'usr/share/new'), 1_650_000_000, 1_650_000_000);
      },
      (m) => {
        fs.rmSync(join(m, 'usr/share/new'));
        fs.mkdirSync(join(m, 'etc/conf.d'));
        fs.writeFileSync(join(m, 'bin/x'), 'x');
        fs.rmSync(join(m, 'usr'), { recursive: true });
        fs.mkdirSync(join(m, 'usr'));
        fs.writeFileSync(join(m, 'etc/hosts'), 'again');
        fs.rmSync(join(m, 'new'), { recursive: true });
        fs.appendFileSync(join(m, 'data/f1'), '!');
      },
    ];
    const seen: string[][] = [];
    for (const step of steps) {
      await stack.layer(step);
      const { native, naive } = await stack.compare();
      assert.equal(lines(native), lines(naive), `layer ${stack.layers.length - 1}`);
      seen.push(lines(native));
    }
    includes(seen[0]!, ['D /etc/hosts', 'D /usr/share', 'D /etc/conf.d/a.conf', 'A /etc/conf.d/c.conf', 'A /new', 'C /bin/tool']);
    includes(seen[1]!, ['A /etc/hosts', 'A /usr/share', 'A /usr/share/new', 'D /new/dir', 'C /etc/conf.d/c.conf']);
    includes(seen[2]!, ['C /etc', 'D /etc/conf.d', 'D /etc/hosts', 'C /etc/passwd', 'C /usr/share/new']);
    includes(seen[3]!, ['A /etc/conf.d', 'A /bin/x', 'D /usr/lib', 'D /usr/share', 'A /etc/hosts', 'D /new', 'C /data/f1']);
  } finally {
    removeTree(dir);
  }
});

itPlus('a chain of 135 layers (mounted with fsconfig lowerdir+): deletions and re-creations layers apart', async () => {
  const dir = tempDir('ovl2-changes-deep-');
  try {
    const stack = new Stack(dir);
    stack.base((b) => {
      for (let d = 0; d < 7; d++) {
        fs.mkdirSync(join(b, `d${d}`));
        fs.writeFileSync(join(b, `d${d}/base`), `base ${d}`);
      }
    });
    const deleted: string[] = [];
    for (let i = 1; i <= 134; i++) {
      await stack.layer((m) => {
        fs.writeFileSync(join(m, `d${i % 7}/f${i}`), `layer ${i}`);
        const victim = `d${(i - 5) % 7}/f${i - 5}`;
        if (i % 9 === 0 && i > 5 && fs.existsSync(join(m, victim))) {
          fs.rmSync(join(m, victim));
          deleted.push(victim);
        }
        if (i % 13 === 0) {
          fs.rmSync(join(m, `d${i % 7}`), { recursive: true });
          fs.mkdirSync(join(m, `d${i % 7}`));
          fs.writeFileSync(join(m, `d${i % 7}/fresh${i}`), 'fresh');
        }
        if (i % 17 === 0 && deleted.length > 0) {
          const again = deleted.shift()!;
          fs.writeFileSync(join(m, again), `again ${i}`);
        }
      });
      if (i === 130 || i === 134) {
        const { native, naive } = await stack.compare();
        assert.equal(lines(native), lines(naive), `layer ${i}`);
        assert.ok(native.length > 0);
      }
    }
    // a last layer touching things from far below
    await stack.layer((m) => {
      fs.rmSync(join(m, 'd3'), { recursive: true });
      fs.appendFileSync(join(m, 'd1/base'), '!');
      fs.rmSync(join(m, 'd2'), { recursive: true });
      fs.mkdirSync(join(m, 'd2'));
    });
    assert.is(stack.lowersOfTop.length, 135);
    const { native, naive } = await stack.compare();
    assert.equal(lines(native), lines(naive), 'top layer');
    includes(lines(native), ['D /d3', 'C /d2', 'A /d1/base']); // d1 was emptied by an opaque re-creation at layer 78
  } finally {
    removeTree(dir);
  }
});

// Seeded random edits through the merged dir: whatever mix the kernel produces, native == naive.

function listAll(root: string, rel = ''): Array<{ rel: string; dir: boolean }> {
  const out: Array<{ rel: string; dir: boolean }> = [];
  for (const e of fs.readdirSync(join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    out.push({ rel: r, dir: e.isDirectory() });
    if (e.isDirectory()) out.push(...listAll(root, r));
  }
  return out;
}

function randomEdit(r: () => number, m: string, ops: number): void {
  const names = ['a', 'b', 'c', 'dd', 'e-1', 'e.2'];
  for (let k = 0; k < ops; k++) {
    const all = listAll(m);
    const dirs = ['', ...all.filter((x) => x.dir).map((x) => x.rel)];
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    const target = all.length ? pick(all) : null;
    const inDir = pick(dirs);
    const fresh = join(m, inDir, pick(names));
    try {
      switch (Math.floor(r() * 10)) {
        case 0: fs.writeFileSync(fresh, String(r())); break;
        case 1: fs.mkdirSync(fresh); break;
        case 2: if (target) fs.rmSync(join(m, target.rel), { recursive: true }); break;
        case 3: if (target && !target.dir) fs.appendFileSync(join(m, target.rel), 'x'); break;
        case 4: if (target) fs.chmodSync(join(m, target.rel), target.dir ? 0o700 : 0o600); break;
        case 5: if (target && target.dir) { fs.rmSync(join(m, target.rel), { recursive: true }); fs.mkdirSync(join(m, target.rel)); } break;
        case 6: if (target) execFileSync('mv', ['-T', join(m, target.rel), fresh], { stdio: 'ignore' }); break;
        case 7: if (target && !target.dir) fs.linkSync(join(m, target.rel), fresh); break;
        case 8: fs.symlinkSync(pick(names), fresh); break;
        case 9: if (target) fs.utimesSync(join(m, target.rel), 1_650_000_000 + k, 1_650_000_000 + k); break;
      }
    } catch {
      // EEXIST, moving a dir into itself, ...: a skipped operation is fine
    }
  }
}

it('random edits through the merged dir over three layers (seeded)', async () => {
  for (let seed = 1; seed <= 8; seed++) {
    const dir = tempDir('ovl2-changes-rand-');
    try {
      const r = rng(seed);
      const stack = new Stack(dir);
      stack.base((b) => randomEdit(r, b, 40));
      for (let layer = 0; layer < 3; layer++) {
        await stack.layer((m) => randomEdit(r, m, 25));
        const { native, naive } = await stack.compare();
        assert.equal(lines(native), lines(naive), `seed ${seed} layer ${layer + 1}`);
      }
    } finally {
      removeTree(dir);
    }
  }
});

it('a redirect or metacopy xattr in the upper asks for the naive path', async () => {
  const dir = tempDir('ovl2-changes-redirect-');
  try {
    const stack = new Stack(dir);
    stack.base(fillBase);
    const upper = await stack.layer((m) => fs.writeFileSync(join(m, 'etc/new'), 'n'));
    shim.lsetxattr(join(upper, 'etc'), 'trusted.overlay.redirect', '/elsewhere', 0);
    let caught: unknown = null;
    try { await changesNative(upper, stack.lowersOfTop, { userxattr: false }); } catch (e) { caught = e; }
    assert.ok(caught instanceof NeedsNaive, String(caught));
    // A fresh directory in its place carries no redirect (the shim has no removexattr: nothing else needs one).
    fs.mkdirSync(join(upper, 'etc.fresh'), { mode: fs.statSync(join(upper, 'etc')).mode & 0o7777 });
    for (const name of fs.readdirSync(join(upper, 'etc'))) fs.renameSync(join(upper, 'etc', name), join(upper, 'etc.fresh', name));
    fs.rmdirSync(join(upper, 'etc'));
    fs.renameSync(join(upper, 'etc.fresh'), join(upper, 'etc'));
    assert.is(shim.lgetxattr(join(upper, 'etc'), 'trusted.overlay.redirect'), null);
    // metacopy on an added path changes nothing (an A whatever it holds); on one the lower has, it does
    shim.lsetxattr(join(upper, 'etc/new'), 'trusted.overlay.metacopy', '', 0);
    const added = await changesNative(upper, stack.lowersOfTop, { userxattr: false });
    assert.equal(added.map((c) => `${c.kind} ${c.path}`), ['C /etc', 'A /etc/new']);
    fs.copyFileSync(join(stack.lowersOfTop[0]!, 'etc/hosts'), join(upper, 'etc/hosts'));
    shim.lsetxattr(join(upper, 'etc/hosts'), 'trusted.overlay.metacopy', '', 0);
    caught = null;
    try { await changesNative(upper, stack.lowersOfTop, { userxattr: false }); } catch (e) { caught = e; }
    assert.ok(caught instanceof NeedsNaive, String(caught));
  } finally {
    removeTree(dir);
  }
});

it('userxattr mounts (user.overlay.opaque): native == naive', async () => {
  const dir = tempDir('ovl2-changes-userxattr-');
  try {
    const stack = new Stack(dir, ['userxattr']);
    stack.base(fillBase);
    await stack.layer((m) => {
      fs.rmSync(join(m, 'etc/conf.d'), { recursive: true });
      fs.mkdirSync(join(m, 'etc/conf.d'));
      fs.rmSync(join(m, 'top.txt'));
    });
    const opaque = shim.lgetxattr(join(stack.top, 'etc/conf.d'), 'user.overlay.opaque');
    assert.is(opaque?.toString(), 'y', 'the kernel marked it with user.overlay.opaque');
    const { native, naive } = await stack.compare();
    assert.equal(lines(native), lines(naive));
    includes(lines(native), ['D /etc/conf.d/a.conf', 'D /top.txt']);
  } finally {
    removeTree(dir);
  }
});

test.run();
