// The CLI's help, version and usage errors: no driver home is touched (runs without root).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI_BIN } from './support/cli.js';
import { readFileSync } from 'node:fs';

const cli = CLI_BIN;
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, OVERLAY2_HOME: '/nonexistent/ovl2-home' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const version = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')).version as string;

test('--version and -V print the package version', () => {
  for (const flag of ['--version', '-V']) {
    const r = run(flag);
    assert.is(r.code, 0);
    assert.is(r.out, `overlay2 ${version}\n`);
  }
  assert.is(run('ls', '--version').out, `overlay2 ${version}\n`);
});

test('help lists every command; help COMMAND and COMMAND --help describe one', () => {
  const all = run('help');
  assert.is(all.code, 0);
  for (const c of ['create', 'remove', 'exists', 'ls', 'metadata', 'mount', 'unmount', 'cleanup', 'diff', 'apply', 'diffsize', 'changes', 'status', 'demo']) {
    assert.match(all.out, new RegExp(`^  ${c}\\b`, 'm'), c);
  }
  assert.is(run('--help').out, all.out);
  const one = run('help', 'remove');
  assert.is(one.code, 0);
  assert.match(one.out, /^usage: overlay2 remove ID \[--force\]/);
  assert.match(one.out, /-f, --force/);
  assert.is(run('remove', '--help').out, one.out);
  assert.is(run('remove', '-h').out, one.out);
  const unknown = run('help', 'nope');
  assert.is(unknown.code, 2);
  assert.match(unknown.err, /unknown command "nope"/);
});

test('each command\'s usage line lists every option its help describes (one table makes both)', () => {
  const overview = run('help').out;
  for (const name of [...overview.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]!)) {
    const help = run('help', name).out;
    const usage = /^usage: overlay2 (.*)$/m.exec(help)![1]!;
    assert.ok(overview.includes(`  ${usage}`), `the overview shows ${name}'s usage line`);
    for (const [, short, long] of help.matchAll(/^ {2}(?:-(\w), )? {0,4}--([\w-]+)/gm)) {
      if (/^Global/m.test(help.slice(0, help.indexOf(`--${long}`)))) continue;
      assert.ok(usage.includes(`--${long}`) || (short !== undefined && new RegExp(`(^|[\\s\\[|])-${short}\\b`).test(usage)), `${name}: --${long} in "${usage}"`);
    }
  }
  assert.match(run('help', 'apply').out, /gzip, zstd, xz or bzip2/);
  assert.match(run('help', 'create').out, /ext4/);
  assert.match(run('help', 'save').out, /^usage: overlay2 save .*--json.*-q/m);
});

test('usage errors: one line with a hint, exit 2, before any home is opened', () => {
  for (const args of [[], ['frobnicate'], ['exists'], ['exists', 'a', 'b'], ['ls', '--json=1'], ['diff', 'x', '-o'], ['--home']]) {
    const r = run(...args);
    assert.is(r.code, 2, args.join(' '));
    assert.is(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, /^overlay2: .* — (usage: overlay2 |see overlay2 help)/);
  }
});

test.run();
