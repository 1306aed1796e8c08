// Thin manifests and options without mounts: the fork's two forms read, hostile ones refused with
// the documented codes, the published form byte-stable.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { parseManifest, serializeManifest, MANIFEST_MAX_BYTES } from '../src/thin/manifest.js';
import { manifestTar } from '../src/thin/manifest-tar.js';
import { parseDriverOptions } from '../src/options.js';
import { TarReader } from '../src/tar/reader.js';

const H1 = 'a'.repeat(64), H2 = 'b'.repeat(64), H3 = 'c'.repeat(64);

function code(fn: () => unknown): string | undefined {
  try { fn(); } catch (e) { return (e as { code?: string }).code; }
  return undefined;
}

const thinJson = (layers: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ version: '1.0', ...extra, layers });

test('thin.json: base first, cvmfs urls split into repository and path', () => {
  const m = parseManifest(thinJson([
    { digest: `sha256:${H1}`, url: `cvmfs://repo.cern.ch/layers/${H1}` },
    { digest: `sha256:${H2}`, url: `cvmfs://repo.cern.ch/deep/er/${H2}/` },
  ], { min_version: '1.0', origin: 'docker.io/library/ubuntu:16.04', comment: 'hi' }), 'thin.json', 'T');
  assert.equal(m.layers, [
    { digest: `sha256:${H1}`, repo: 'repo.cern.ch', path: `layers/${H1}` },
    { digest: `sha256:${H2}`, repo: 'repo.cern.ch', path: `deep/er/${H2}` },
  ]);
  assert.is(m.origin, 'docker.io/library/ubuntu:16.04');
  assert.is(m.form, 'thin.json');
});

test('.thin (the earlier form): {digest, repo, location} -> REPO/layers/DIGEST, listed top first', () => {
  const m = parseManifest(JSON.stringify({ version: '0.1', layers: [
    { digest: H2, repo: 'r2', location: 'layers' },
    { digest: H1, repo: 'r1' },
  ] }), '.thin', 'T');
  assert.equal(m.layers, [
    { digest: `sha256:${H1}`, repo: 'r1', path: `layers/${H1}` },
    { digest: `sha256:${H2}`, repo: 'r2', path: `layers/${H2}` },
  ]);
});

test('a digest listed twice is kept once, at its topmost place', () => {
  const m = parseManifest(thinJson([
    { digest: `sha256:${H1}`, url: `cvmfs://r/layers/${H1}` },
    { digest: `sha256:${H2}`, url: `cvmfs://r/layers/${H2}` },
    { digest: `sha256:${H1}`, url: `cvmfs://r/layers/${H1}` },
    { digest: `sha256:${H3}`, url: `cvmfs://r/layers/${H3}` },
  ]), 'thin.json', 'T');
  assert.equal(m.layers.map((l) => l.digest.slice(7, 8)), ['b', 'a', 'c']);
});

test('hostile or malformed manifests: one documented code each', () => {
  const ok = { digest: `sha256:${H1}`, url: `cvmfs://r/layers/${H1}` };
  const cases: Array<[string, string | Buffer, string]> = [
    ['not JSON', '{"version":', 'ERR_THIN_MANIFEST'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'ERR_THIN_MANIFEST'],
    ['an array', '[]', 'ERR_THIN_MANIFEST'],
    ['no version', JSON.stringify({ layers: [ok] }), 'ERR_THIN_MANIFEST'],
    ['version a number', JSON.stringify({ version: 1, layers: [ok] }), 'ERR_THIN_MANIFEST'],
    ['layers missing', JSON.stringify({ version: '1.0' }), 'ERR_THIN_MANIFEST'],
    ['layers empty', thinJson([]), 'ERR_THIN_MANIFEST'],
    ['layers an object', thinJson({}), 'ERR_THIN_MANIFEST'],
    ['a layer a string', thinJson(['x']), 'ERR_THIN_MANIFEST'],
    ['url a number', thinJson([{ digest: ok.digest, url: 7 }]), 'ERR_THIN_MANIFEST'],
    ['http scheme', thinJson([{ digest: ok.digest, url: `http://r/layers/${H1}` }]), 'ERR_THIN_MANIFEST'],
    ['file scheme', thinJson([{ digest: ok.digest, url: 'file:///etc' }]), 'ERR_THIN_MANIFEST'],
    ['no scheme', thinJson([{ digest: ok.digest, url: `r/layers/${H1}` }]), 'ERR_THIN_MANIFEST'],
    ['bad digest', thinJson([{ digest: 'sha256:xyz', url: ok.url }]), 'ERR_THIN_MANIFEST'],
    ['md5 digest', thinJson([{ digest: `md5:${'a'.repeat(32)}`, url: ok.url }]), 'ERR_THIN_MANIFEST'],
    ['comment a number', thinJson([ok], { comment: 3 }), 'ERR_THIN_MANIFEST'],
    ['no path', thinJson([{ digest: ok.digest, url: 'cvmfs://r' }]), 'ERR_THIN_MANIFEST'],
    ['min_version newer', thinJson([ok], { min_version: '2.0' }), 'ERR_THIN_VERSION'],
    ['min_version 1.1', thinJson([ok], { min_version: '1.1' }), 'ERR_THIN_VERSION'],
    ['dot-dot path', thinJson([{ digest: ok.digest, url: 'cvmfs://r/../../etc' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['dot-dot inside', thinJson([{ digest: ok.digest, url: 'cvmfs://r/layers/../../x' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['absolute path', thinJson([{ digest: ok.digest, url: 'cvmfs:///etc' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['absolute part', thinJson([{ digest: ok.digest, url: 'cvmfs://r//etc' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['NUL', thinJson([{ digest: ok.digest, url: 'cvmfs://r/lay\0ers' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['repo ..', thinJson([{ digest: ok.digest, url: 'cvmfs://../etc' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['repo with a shell', thinJson([{ digest: ok.digest, url: 'cvmfs://r;touch${IFS}x/layers/a' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['repo with quotes', thinJson([{ digest: ok.digest, url: "cvmfs://r'$(id)'/a" }]), 'ERR_THIN_UNSAFE_PATH'],
    ['repo starting with -', thinJson([{ digest: ok.digest, url: 'cvmfs://-o/a' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['mount-data comma', thinJson([{ digest: ok.digest, url: 'cvmfs://r/a,upperdir=x' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['mount-data colon', thinJson([{ digest: ok.digest, url: 'cvmfs://r/a:b' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['newline', thinJson([{ digest: ok.digest, url: 'cvmfs://r/a\nb' }]), 'ERR_THIN_UNSAFE_PATH'],
    ['old form repo ..', JSON.stringify({ version: '1.0', layers: [{ digest: H1, repo: '..' }] }), 'ERR_THIN_UNSAFE_PATH'],
    ['old form repo missing', JSON.stringify({ version: '1.0', layers: [{ digest: H1 }] }), 'ERR_THIN_MANIFEST'],
  ];
  for (const [what, bytes, want] of cases) {
    const name = what.startsWith('old form') ? '.thin' : 'thin.json';
    assert.is(code(() => parseManifest(bytes, name, 'T')), want, what);
  }
  const big = thinJson([ok], { comment: 'x'.repeat(MANIFEST_MAX_BYTES) });
  assert.is(code(() => parseManifest(big, 'thin.json', 'T')), 'ERR_THIN_MANIFEST');
});

test('the published manifest and its tar are the same bytes every time', () => {
  const layers = [{ digest: `sha256:${H1}`, repo: 'r', path: `layers/${H1}` }];
  const a = serializeManifest({ layers, origin: 'x' });
  assert.ok(a.equals(serializeManifest({ origin: 'x', layers })));
  assert.equal(parseManifest(a, 'thin.json', 'T').layers, layers);
  const tar = manifestTar(a);
  assert.ok(tar.equals(manifestTar(a)));
  const seen: Array<{ name: string; mode: number; uid: number; gid: number; mtime: number; size: number }> = [];
  const reader = new TarReader({
    entry: (e) => seen.push({ name: e.name, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtimeSec, size: e.size }),
    data: () => undefined,
    end: () => undefined,
  });
  reader.push(tar);
  reader.finish();
  assert.equal(seen, [{ name: 'thin.json', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: a.length }]);
});

test('options: cvmfsMountMethod, thin.root, thin.mount_command; unknown or malformed -> ERR_BAD_OPTION', () => {
  assert.equal(parseDriverOptions(['cvmfsMountMethod=external']).thin, { mountMethod: 'external', root: null, mountCommand: null });
  assert.equal(parseDriverOptions(['thin.root=/srv/cvmfs/', 'thin.mount_command=/usr/bin/m']).thin,
    { mountMethod: 'internal', root: '/srv/cvmfs', mountCommand: '/usr/bin/m' });
  assert.equal(parseDriverOptions({ CVMFSMOUNTMETHOD: 'internal', 'thin.mount_command': '/m' }).thin.mountMethod, 'internal');
  for (const bad of [['cvmfsMountMethod=fuse'], ['cvmfsMountMethod=internal'], ['thin.root=relative'], ['thin.root=/a,b'],
    ['thin.root=/a/../b'], ['thin.mount_command=mount'], ['thin.mount_command=/a:b'], ['thin.other=1'], ['thin.root']]) {
    assert.is(code(() => parseDriverOptions(bad)), 'ERR_BAD_OPTION', bad[0]);
  }
});

test.run();
