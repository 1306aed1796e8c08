// Pure parts of the driver: ids, options, sizes, mount data, feature decisions.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { generateLinkId, validateId, isLinkId } from '../src/layout/ids.js';
import { parseDriverOptions, parseSize, parseStorageOpt } from '../src/options.js';
import { baseOptions, formatMountLabel, mountData } from '../src/mount/data.js';
import { overlayUnsupportedReason, incompatibleBackingFs, kernelVersion, FS_NAMES } from '../src/features.js';
import { FS_MAGIC } from '../src/native/constants.js';
import { IdMappings } from '../src/idmap.js';
import { Overlay2Error } from '../src/errors.js';

function code(fn: () => unknown): string | undefined {
  try { fn(); } catch (e) { return (e as { code?: string }).code; }
  return undefined;
}

test('link ids: 26 base32 characters, unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = generateLinkId();
    assert.ok(isLinkId(id), id);
    seen.add(id);
  }
  assert.is(seen.size, 1000);
});

test('id validation', () => {
  for (const ok of ['a', 'abc-init', 'f'.repeat(64), 'x'.repeat(255), 'été']) assert.is(code(() => validateId(ok)), undefined);
  for (const bad of ['', '.', '..', 'a/b', '/abs', 'a\0', 'x'.repeat(256), 'l', '.partial', 'é'.repeat(128),
    'q,upperdir=..', 'a:b', 'a\\b', 'a\nb', 'a\tb', 'a\x7fb']) {
    assert.is(code(() => validateId(bad)), 'ERR_INVALID_ID', JSON.stringify(bad));
  }
  assert.is(code(() => validateId(42 as unknown as string)), 'ERR_INVALID_ID');
});

test('driver options as dockerd parses them', () => {
  assert.equal(parseDriverOptions([]), { overrideKernelCheck: false, quotaSize: 0, thin: { mountMethod: 'external', root: null, mountCommand: null } });
  assert.equal(parseDriverOptions(['Overlay2.Override_Kernel_Check=1', 'overlay2.size=10G']),
    { overrideKernelCheck: true, quotaSize: 10 * 1024 ** 3, thin: { mountMethod: 'external', root: null, mountCommand: null } });
  assert.equal(parseDriverOptions({ 'overlay2.size': '512m' }).quotaSize, 512 * 1024 ** 2);
  assert.is(code(() => parseDriverOptions(['overlay2.unknown=1'])), 'ERR_BAD_OPTION');
  assert.is(code(() => parseDriverOptions(['noequals'])), 'ERR_BAD_OPTION');
  assert.is(code(() => parseDriverOptions(['overlay2.override_kernel_check=yes'])), 'ERR_BAD_OPTION');
  const e = (() => { try { parseDriverOptions(['overlay2.bogus=1']); } catch (err) { return err as Overlay2Error; } })();
  assert.is(e?.option, 'overlay2.bogus');
});

test('sizes in binary units, like go-units RAMInBytes', () => {
  assert.is(parseSize('1024', 'x'), 1024);
  assert.is(parseSize('1k', 'x'), 1024);
  assert.is(parseSize('1.5GiB', 'x'), 1.5 * 1024 ** 3);
  assert.is(parseSize('20 MB', 'x'), 20 * 1024 ** 2);
  for (const bad of ['', 'G', '-1G', '1X', '1e9']) assert.is(code(() => parseSize(bad, 'x')), 'ERR_BAD_OPTION', bad);
  assert.equal(parseStorageOpt({ Size: '2G' }), { size: 2 * 1024 ** 3 });
  assert.is(code(() => parseStorageOpt({ other: '1' })), 'ERR_BAD_OPTION');
});

test('mount data in moby\'s order, labels only with SELinux', () => {
  const f = { indexOff: true, userxattr: false, redirectDirOff: true, metacopyOff: true };
  assert.equal(baseOptions(f), ['index=off', 'redirect_dir=off', 'metacopy=off']);
  assert.equal(baseOptions({ ...f, userxattr: true, indexOff: false }), ['userxattr', 'redirect_dir=nofollow', 'metacopy=off']);
  assert.is(mountData(['index=off'], { lowers: ['/h/l/A', '/h/l/B'], upper: '/h/x/diff', work: '/h/x/work' }, undefined, false),
    'index=off,lowerdir=/h/l/A:/h/l/B,upperdir=/h/x/diff,workdir=/h/x/work');
  assert.is(mountData([], { lowers: ['/h/x/diff', '/h/l/A'] }, 'lbl', false), 'lowerdir=/h/x/diff:/h/l/A');
  assert.is(formatMountLabel('a=b', 'system_u:object_r:c:s0:c1,c2', true), 'a=b,context="system_u:object_r:c:s0:c1,c2"');
  assert.is(formatMountLabel('', 'x"y', true), 'context="x\\"y"');
  assert.is(formatMountLabel('a=b', 'lbl', false), 'a=b');
});

test('overlay support: the test mount decides, /proc/filesystems explains (ERR_NOT_SUPPORTED cases)', () => {
  assert.is(overlayUnsupportedReason(null, ''), null);
  const missing = overlayUnsupportedReason(new Error('ENODEV: no such device, mount'), 'nodev\tproc\nnodev\ttmpfs\n\text4\n');
  assert.match(missing ?? '', /not a supported filesystem/);
  const listed = overlayUnsupportedReason(new Error('EINVAL'), 'nodev\toverlay\n');
  assert.match(listed ?? '', /test mount failed/);
});

test('incompatible backing filesystems', () => {
  for (const m of [FS_MAGIC.overlay, FS_MAGIC.aufs, FS_MAGIC.ecryptfs, FS_MAGIC.nfs, FS_MAGIC.zfs]) {
    assert.ok(incompatibleBackingFs(m, [6, 1]), FS_NAMES[m]);
  }
  assert.is(incompatibleBackingFs(FS_MAGIC.btrfs, [6, 1]), null);
  assert.is(incompatibleBackingFs(FS_MAGIC.btrfs, [3, 18]), 'btrfs');
  for (const m of [FS_MAGIC.ext4, FS_MAGIC.xfs, FS_MAGIC.tmpfs]) assert.is(incompatibleBackingFs(m, [6, 1]), null);
  assert.is(FS_NAMES[FS_MAGIC.ext4], 'extfs');
  assert.equal(kernelVersion('6.18.44-fc-v657'), [6, 18, 44]);
  assert.equal(kernelVersion('4.0'), [4, 0, 0]);
});

test('id maps: container ids to host ids and back', () => {
  const m = new IdMappings({ uidMaps: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMaps: [{ containerId: 0, hostId: 200000, size: 65536 }] });
  assert.equal(m.root(), { uid: 100000, gid: 200000 });
  assert.equal(m.toHost(1000, 50), { uid: 101000, gid: 200050 });
  assert.equal(m.toContainer(101000, 200050), { uid: 1000, gid: 50 });
  assert.is(code(() => m.toHost(70000, 0)), 'ERR_BAD_ARCHIVE');
  assert.is(code(() => m.toContainer(5, 200000)), 'ERR_BAD_OPTION');
  assert.equal(new IdMappings().toHost(7, 8), { uid: 7, gid: 8 });
  assert.is(code(() => new IdMappings({ uidMaps: [{ containerId: 0, hostId: 1, size: 0 }] })), 'ERR_BAD_OPTION');
});

test.run();
