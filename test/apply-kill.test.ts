// Crash safety: a process killed in the middle of an import leaves diff/ as it was (empty) and
// only a staging dir behind, which removeStaleStaging clears; the import then succeeds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { applyLayer, removeStaleStaging } from '../src/apply/apply.js';
import { IdMappings } from '../src/idmap.js';
import { isRoot, tempDir, testIf } from './support/env.js';
import { dir, file, tarOf } from './apply-tar.js';

const maybe = testIf(isRoot, 'the kill test', 'not running as root');

const DIRS = 20, PER_DIR = 1000;

function bigTar(): Buffer {
  const members: Buffer[] = [];
  for (let d = 0; d < DIRS; d++) {
    members.push(dir(`d${d}/`));
    for (let f = 0; f < PER_DIR; f++) members.push(file(`d${d}/f${f}`, `file ${d}/${f}\n`.repeat(8)));
  }
  return tarOf(...members);
}

function stagingDirs(layer: string): string[] {
  return fs.readdirSync(layer).filter((n) => n.startsWith('.staging-diff-'));
}

// Generous: under TCG (the 6.1 VM pass) on a loaded 2-core machine, filling the staging dir took over 30 s.
async function until(cond: () => boolean, what: string, ms = 180_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

maybe('SIGKILL mid-import: diff/ stays empty, staging is swept, the import then succeeds', async () => {
  const root = tempDir('ovl2-kill-');
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const layer = join(root, 'layer');
    const diff = join(layer, 'diff');
    fs.mkdirSync(diff, { recursive: true });
    const tar = bigTar();
    const script = `
      import { applyLayer } from ${JSON.stringify(new URL('../src/apply/apply.js', import.meta.url).href)};
      import { IdMappings } from ${JSON.stringify(new URL('../src/idmap.js', import.meta.url).href)};
      await applyLayer(${JSON.stringify(layer)}, process.stdin, { userxattr: false, idMappings: new IdMappings() });
      console.log('finished');`;
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    child = c;
    let out = '';
    child.stdout!.on('data', (b: Buffer) => { out += b; });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => c.once('exit', (_code, signal) => resolve(signal)));
    child.stdin!.on('error', () => { /* EPIPE once it is killed */ });
    // Feed 60% of the archive and hold the rest back: the child is certainly mid-way when killed.
    child.stdin!.write(tar.subarray(0, Math.floor(tar.length * 0.6)));
    await until(() => {
      const s = stagingDirs(layer);
      if (s.length !== 1) return false;
      const d = join(layer, s[0], 'd5');
      return fs.existsSync(d) && fs.readdirSync(d).length > 100;
    }, 'the staging dir to fill');
    child.kill('SIGKILL');
    assert.is(await exited, 'SIGKILL');
    assert.is(out, '', 'the child did not finish');

    assert.equal(fs.readdirSync(diff), [], 'diff/ untouched by the killed import');
    assert.is(stagingDirs(layer).length, 1, 'the killed import left its staging dir');
    assert.is(await removeStaleStaging(layer), 1);
    assert.equal(fs.readdirSync(layer), ['diff']);
    assert.equal(fs.readdirSync(diff), []);

    const size = await applyLayer(layer, Readable.from([tar]), { userxattr: false, idMappings: new IdMappings() });
    assert.is(fs.readdirSync(diff).length, DIRS);
    assert.is(fs.readdirSync(join(diff, 'd19')).length, PER_DIR);
    assert.is(fs.readFileSync(join(diff, 'd19/f999'), 'utf8'), 'file 19/999\n'.repeat(8));
    assert.is(size, expectedSize());
    assert.equal(fs.readdirSync(layer), ['diff']);
  } finally {
    // A failed wait must not leave the child writing (rm would race it) or holding this process open.
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** Σ of the file sizes bigTar() writes. */
function expectedSize(): number {
  let total = 0;
  for (let d = 0; d < DIRS; d++) for (let f = 0; f < PER_DIR; f++) total += `file ${d}/${f}\n`.length * 8;
  return total;
}

test.run();
