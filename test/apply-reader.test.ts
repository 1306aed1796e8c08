// The tar reader alone: what it hands to its sink, and the archive shapes real writers produce.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TarReader, type TarEntry } from '../src/tar/reader.js';
import { parsePax } from '../src/tar/pax.js';
import { detectCompression } from '../src/tar/decompress.js';
import { dir, file, member, pax, paxRecord, tarOf } from './apply-tar.js';

interface Seen { name: string; kind: string; size: number; mtime: string; data: string; xattrs: string }

function read(tar: Buffer, chunk = tar.length): Seen[] {
  const out: Seen[] = [];
  let cur: Seen | null = null;
  const parts: Buffer[] = [];
  const r = new TarReader({
    entry(e: TarEntry) {
      cur = {
        name: e.name, kind: e.kind, size: e.size, mtime: `${e.mtimeSec}.${e.mtimeNsec}`, data: '',
        xattrs: (e.xattrs ?? []).map(([k, v]) => `${k}=${v.toString('hex')}`).join(','),
      };
    },
    data(b, s, t) { parts.push(Buffer.from(b.subarray(s, t))); },
    end() { cur!.data = Buffer.concat(parts.splice(0)).toString('latin1'); out.push(cur!); },
  });
  for (let i = 0; i < tar.length; i += chunk) r.push(tar.subarray(i, i + chunk));
  r.finish();
  return out;
}

test('entries, content and end-of-archive; record padding after the end is ignored', () => {
  const tar = Buffer.concat([tarOf(dir('d/'), file('d/f', 'hello'), file('e', '')), Buffer.alloc(8192, 0x55)]);
  const seen = read(tar);
  assert.equal(seen.map((s) => `${s.kind}:${s.name}:${s.data}`), ['dir:d/:', 'file:d/f:hello', 'file:e:']);
});

test('archives without end blocks, or with a lone zero block, end cleanly (as Go reads them)', () => {
  const body = Buffer.concat([file('a', 'x'), file('b', 'y')]);
  assert.is(read(body).length, 2);
  assert.is(read(Buffer.concat([body, Buffer.alloc(512)])).length, 2);
});

test('base-256 numbers: large uid, negative mtime', () => {
  const tar = tarOf(member({
    name: 'old',
    patch: (b) => {
      b.fill(0, 108, 116); b[108] = 0x80; b.writeUInt32BE(3_000_000_000, 112);     // uid 3e9
      b.fill(0xff, 136, 148); b[147] = 0xfe;                                       // mtime -2
    },
  }));
  let n = 0;
  const r = new TarReader({ entry(e) { n++; assert.is(e.uid, 3_000_000_000); assert.is(e.mtimeSec, -2); }, data() {}, end() {} });
  r.push(tar);
  r.finish();
  assert.is(n, 1);
});

test('signed-sum checksums (old writers) are accepted', () => {
  const block = member({ name: 'é', data: 'x' });
  // recompute the checksum as a signed sum over the header block
  const h = block.subarray(0, 512);
  h.fill(0x20, 148, 156);
  let signed = 0;
  for (const b of h) signed += b > 127 ? b - 256 : b;
  h.write(signed.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  // names are byte strings: é's two UTF-8 bytes, one char each
  assert.is(read(tarOf(block))[0].name, Buffer.from('é').toString('latin1'));
});

test('ustar prefix joins the name; PAX path, mtime and xattrs override and are binary-exact', () => {
  const withPrefix = member({ name: 'leaf', patch: (b) => { b.write('some/prefix', 345, 'latin1'); } });
  const bin = Buffer.from([0xff, 0x00, 0x80, 0x0a]);
  const tar = tarOf(withPrefix, pax([['path', 'pax/name ✓'], ['mtime', '-1.25'], ['SCHILY.xattr.user.b', bin]]), file('ignored', 'z'));
  const seen = read(tar);
  assert.is(seen[0].name, 'some/prefix/leaf');
  assert.is(seen[1].name, Buffer.from('pax/name ✓').toString('latin1'));
  assert.is(seen[1].mtime, '-2.750000000');
  assert.is(seen[1].xattrs, 'user.b=ff00800a');
});

test('PAX records: lengths with multi-digit prefixes, repeated keys, empty values unset', () => {
  const recs = Buffer.concat([paxRecord('path', 'a'.repeat(120)), paxRecord('path', 'b'), paxRecord('uid', '77'), paxRecord('uid', '')]);
  const p = parsePax(recs);
  assert.is(p.path, 'b');
  assert.is(p.uid, undefined);
  assert.throws(() => parsePax(Buffer.from('5 a=b\n')));
  assert.throws(() => parsePax(Buffer.from('07 =b\n')));
});

test('compression magics', () => {
  assert.is(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0])), 'gzip');
  assert.is(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.is(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  assert.is(detectCompression(Buffer.from('BZh91AY&SY', 'latin1')), 'bzip2');
  assert.is(detectCompression(Buffer.from('BZh-a-tar-member-name', 'latin1')), 'none');
  assert.is(detectCompression(file('x', 'y')), 'none');
});

test('any chunking gives the same events', () => {
  const members = [dir('a/')];
  for (let i = 0; i < 20; i++) members.push(file(`a/${i}`, 'z'.repeat(i * 61)));
  const tar = tarOf(...members, pax([['path', 'p'.repeat(300)]]), file('x', 'pax'));
  const whole = JSON.stringify(read(tar));
  for (const c of [1, 3, 100, 511, 512, 513, 1500]) assert.is(JSON.stringify(read(tar, c)), whole, `chunk ${c}`);
});

test.run();
