// The README's code as a user copies it: the Install section's commands are how this file installs
// the package (npm pack, then npm install of the tarball), every ```ts block type-checks against the
// installed package, and the API example runs as written on a Quick start machine — as root, its
// home /var/lib/overlay2 (a tmpfs in a private mount namespace here, so the machine's is untouched),
// a layer.tar.gz beside it, and no project quotas.
import * as assert from 'uvu/assert';
import { test as uvuTest } from 'uvu';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { scratchRoot, testIf, canMountOverlay, whyNotMount, have } from './support/env.js';
import { packAndInstall, sh, type Packed } from './support/packed.js';

const root = process.cwd();
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
const scratch = scratchRoot('ovl2-readme-');
let packed: Packed;

/** The text of a `## ` section, up to the next one. */
function section(title: string): string {
  const at = readme.indexOf(`\n## ${title}\n`);
  assert.ok(at >= 0, `README has a "## ${title}" section`);
  const next = readme.indexOf('\n## ', at + 1);
  return readme.slice(at, next < 0 ? undefined : next);
}

function blocks(text: string, lang: string): string[] {
  return [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

const apiBlock = blocks(section('The API'), 'ts')[0]!;

uvuTest.before(() => {
  packed = packAndInstall(scratch.fresh(), scratch.fresh());
});
uvuTest.after(() => scratch.remove());

uvuTest('Install: says the package is not on the registry yet and installs it the way this suite does', () => {
  const install = section('Install');
  assert.match(install, /not on the npm registry yet/);
  // `npm install overlay2` only as the way once published
  for (const m of install.matchAll(/npm install overlay2`?/g)) {
    const around = install.slice(Math.max(0, m.index! - 120), m.index! + 60);
    assert.match(around, /published/, around);
  }
  const [cmds] = blocks(install, 'sh');
  assert.match(cmds!, /^npm pack\b/m);
  assert.match(cmds!, new RegExp(`^npm install /path/to/overlay2-${(pkg.version as string).replace(/\./g, '\\.')}\\.tgz\\b`, 'm'));
  // what those commands made: the tarball the README names, installed
  assert.ok(packed.tarball.endsWith(`overlay2-${pkg.version as string}.tgz`), packed.tarball);
  assert.ok(existsSync(join(packed.project, 'node_modules', 'overlay2', 'package.json')));
  // no invented public URL
  assert.is(pkg.repository, undefined);
});

uvuTest('every ts block of the README type-checks against the installed package', () => {
  const all = blocks(readme, 'ts');
  assert.ok(all.length >= 4, `found ${all.length} ts blocks`);
  const dir = join(packed.project, 'readme-blocks');
  mkdirSync(dir, { recursive: true });
  const files = all.map((code, i) => {
    // A block that continues the API example (uses `driver` without making one) gets its declaration.
    const continues = /\bdriver\./.test(code) && !/const driver\b/.test(code);
    const prelude = continues ? "import type { Overlay2Driver } from 'overlay2';\ndeclare const driver: Overlay2Driver;\n" : '';
    const name = `block${i}.ts`;
    writeFileSync(join(dir, name), `${prelude}${code}\nexport {};\n`);
    return name;
  });
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true,
      types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
    },
    files,
  }));
  const r = sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir });
  assert.is(r.code, 0, r.out + r.err);
});

uvuTest('the API example says what a size limit needs, as a comment, and asks for none', () => {
  const live = apiBlock.split('\n').filter((l) => !l.trimStart().startsWith('//')).join('\n');
  assert.not.match(live, /storageOpt/);
  assert.match(apiBlock, /\/\/ await driver\.createReadWrite\('ctr', 'base', \{ storageOpt: \{ size: '10G' \} \}\);/);
  assert.match(apiBlock, /prjquota/);
});

testIf(canMountOverlay && have('unshare') && have('mkfs.ext4'), 'running the README\'s API example', canMountOverlay ? 'unshare or mkfs.ext4 is not installed' : whyNotMount, uvuTest)(
  'the API example runs as written (home /var/lib/overlay2 on a default ext4, no quotas)', () => {
    const dir = join(packed.project, 'readme-run');
    mkdirSync(join(dir, 'layer', 'etc'), { recursive: true });
    writeFileSync(join(dir, 'layer', 'etc', 'hostname'), 'readme\n');
    assert.is(sh('tar', ['czf', 'layer.tar.gz', '-C', 'layer', '.'], { cwd: dir }).code, 0);
    // the block as written, only its types erased
    const js = ts.transpileModule(apiBlock, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    writeFileSync(join(dir, 'api.mjs'), js);
    // /var/lib/overlay2 is the example's home: a fresh ext4 image (the Quick start's file system,
    // made without project quotas) mounted there in a private mount namespace over a tmpfs /var/lib
    const img = join(dir, 'home.img');
    assert.is(sh('truncate', ['-s', '64M', img], { cwd: dir }).code, 0);
    assert.is(sh('mkfs.ext4', ['-q', '-F', img], { cwd: dir }).code, 0);
    const run = sh('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      `set -e; mount -t tmpfs tmpfs /var/lib; mkdir /var/lib/overlay2; mount -o loop ${img} /var/lib/overlay2; exec "${process.execPath}" api.mjs`], { cwd: dir });
    assert.is(run.code, 0, run.out + run.err);
    // what it wrote beside itself: the container layer's tar, holding the file the example made
    const list = sh('tar', ['tf', 'ctr.tar'], { cwd: dir });
    assert.is(list.code, 0, list.err);
    assert.match(list.out, /^hello$/m);
  });

uvuTest.run();
