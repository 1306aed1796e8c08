// The header encoder against Go's own archive/tar: test/fixtures/tar-header/vectors.json holds
// the bytes Go 1.19's Writer (the one Docker 20.10 links) wrote for each header (gen.go makes it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { TarHeaderEncoder, cleanPath, joinPath, paxHeaderName, splitUSTARPath, toASCII, type TarHeader } from '../src/tar/header.js';
import { IdNames } from '../src/tar/names.js';

interface Vector {
  case: string;
  name: string; linkname: string; typeflag: number; mode: number; uid: number; gid: number;
  size: number; mtime: number; uname: string; gname: string; devmajor: number; devminor: number;
  xattrs: Record<string, string>;
  bytes: string;
  error?: string;
}

const fixtures = join(process.cwd(), 'test', 'fixtures', 'tar-header');
const vectors: Vector[] = JSON.parse(fs.readFileSync(join(fixtures, 'vectors.json'), 'utf8'));
const bytesOf = (hex: string) => Buffer.from(hex, 'hex').toString('latin1');

function headerOf(v: Vector): TarHeader {
  const xattrs = Object.entries(v.xattrs).map(([k, val]) => [bytesOf(k), Buffer.from(val, 'hex')] as [string, Buffer]);
  return {
    name: bytesOf(v.name), linkname: bytesOf(v.linkname), typeflag: v.typeflag, mode: v.mode, uid: v.uid, gid: v.gid,
    size: v.size, mtime: v.mtime, uname: bytesOf(v.uname), gname: bytesOf(v.gname), devmajor: v.devmajor,
    devminor: v.devminor, xattrs: xattrs.length > 0 ? xattrs : null,
  };
}

test('the vectors cover USTAR, prefix splits, PAX and refusals', () => {
  assert.ok(vectors.length >= 40, `only ${vectors.length} vectors`);
  assert.ok(vectors.some((v) => v.bytes.length === 1024), 'no single-block vector');
  assert.ok(vectors.some((v) => v.bytes.length > 1024 * 2), 'no PAX vector');
  assert.ok(vectors.some((v) => v.error), 'no refused vector');
});

for (const v of vectors) {
  test(`Go archive/tar bytes: ${v.case}`, () => {
    const enc = new TarHeaderEncoder();
    if (v.error) {
      assert.throws(() => enc.encode(headerOf(v)), (e: Error & { code?: string }) => e.code === 'ERR_NOT_SUPPORTED');
      return;
    }
    const got = enc.encode(headerOf(v));
    const want = Buffer.from(v.bytes, 'hex');
    if (!got.equals(want)) {
      let i = 0;
      while (i < want.length && got[i] === want[i]) i++;
      assert.unreachable(`first difference at byte ${i} (block ${i >> 9}, offset ${i % 512}): ` +
        `got ${JSON.stringify(got.subarray(i, i + 16).toString('latin1'))} want ${JSON.stringify(want.subarray(i, i + 16).toString('latin1'))}; ` +
        `lengths ${got.length}/${want.length}`);
    }
  });
}

test('one encoder reused across headers of different sizes gives the same bytes', () => {
  const enc = new TarHeaderEncoder();
  const pax = vectors.find((v) => v.case === 'pax records spanning blocks')!;
  const plain = vectors.find((v) => v.case === 'plain file')!;
  assert.is(enc.encode(headerOf(pax)).toString('hex'), pax.bytes);
  assert.is(enc.encode(headerOf(plain)).toString('hex'), plain.bytes);
  assert.is(enc.encode(headerOf(pax)).toString('hex'), pax.bytes);
});

test('one encoder reused across every vector, in order and reversed, gives each one\'s bytes (it remembers names that fit USTAR)', () => {
  const enc = new TarHeaderEncoder();
  const ok = vectors.filter((v) => !v.error);
  assert.ok(ok.some((v) => /[^\x00-\x7f]/.test(bytesOf(v.uname)) || bytesOf(v.uname).length > 32), 'no vector with a PAX uname');
  for (const v of [...ok, ...[...ok].reverse(), ...ok]) {
    const into = Buffer.alloc(512);
    const direct = enc.encodeInto(headerOf(v), into, 0);
    if (direct > 0) assert.is(into.toString('hex'), v.bytes.slice(0, 1024), v.case);
    assert.is(enc.encode(headerOf(v)).toString('hex'), v.bytes, v.case);
  }
});

test('splitUSTARPath takes the longest prefix that fits', () => {
  assert.is(splitUSTARPath('a/b'), null); // short names are never split
  const name = 'x'.repeat(150) + '/y/' + 'z'.repeat(50);
  assert.equal(splitUSTARPath(name), ['x'.repeat(150) + '/y', 'z'.repeat(50)]);
  assert.is(splitUSTARPath('/' + 'z'.repeat(101)), null); // empty prefix
  assert.is(splitUSTARPath('é'.repeat(60)), null);
});

test('Go path rules: Clean, Join, PaxHeaders names', () => {
  assert.is(cleanPath('a//b/./c/..'), 'a/b');
  assert.is(cleanPath('/../a'), '/a');
  assert.is(cleanPath('../a'), '../a');
  assert.is(cleanPath(''), '.');
  assert.is(joinPath('', 'PaxHeaders.0', 'f'), 'PaxHeaders.0/f');
  assert.is(joinPath('a/b/', 'PaxHeaders.0', ''), 'a/b/PaxHeaders.0');
  assert.is(paxHeaderName('dir/sub/'), 'dir/sub/PaxHeaders.0');
  assert.is(paxHeaderName('caf\xc3\xa9/f'), 'caf/PaxHeaders.0/f');
  assert.is(toASCII('a\xffb\x00c'), 'abc');
});

test('IdNames: first matching line wins, Go/glibc line rules', () => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'overlay2-names-'));
  try {
    fs.writeFileSync(join(dir, 'passwd'), [
      '# comment:x:7:7::/:/bin/sh',
      '  root:x:0:0:root:/root:/bin/bash  ',
      '+nis:x:5:5::/:/bin/sh',
      'short:x:6:6',
      'padded:x:007:7::/:/bin/sh',
      'seven:x:7:7::/:/bin/sh',
      'again:x:7:7::/:/bin/sh',
      'badgid:x:8:x::/:/bin/sh',
      '',
    ].join('\n'));
    fs.writeFileSync(join(dir, 'group'), 'root:x:0:\nwheel:x:10:root,seven\nwheel2:x:10:\n-nis:x:11:\n');
    const names = new IdNames({ passwd: join(dir, 'passwd'), group: join(dir, 'group') });
    assert.is(names.userName(0), 'root');
    assert.is(names.userName(5), '');
    assert.is(names.userName(6), '');
    assert.is(names.userName(7), 'seven');
    assert.is(names.userName(8), '');
    assert.is(names.userName(4242), '');
    assert.is(names.groupName(10), 'wheel');
    assert.is(names.groupName(11), '');
    const none = new IdNames({ passwd: join(dir, 'missing'), group: join(dir, 'missing') });
    assert.is(none.userName(0), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
