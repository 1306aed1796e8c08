// The README documents the whole public surface: every export of the package (values and types),
// every public member of Overlay2Driver, and every CLI command and option. A new one that is not
// written up fails here, naming it.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as api from '../src/index.js';
import { COMMANDS } from '../src/cli/commands.js';
import { CLI_BIN } from './support/cli.js';

const root = process.cwd();
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const code = (name: string) => readme.includes(`\`${name}`) || readme.includes(`${name}(`);

test('every value the package exports is documented', () => {
  const missing = Object.keys(api).filter((name) => !code(name));
  assert.equal(missing, []);
});

test('every type the package exports is documented', () => {
  const files = ['index', 'plugin/index'].map((f) => readFileSync(join(root, 'src', `${f}.ts`), 'utf8'));
  // `type X` inside export lists, and every name of `export type { X, Y }`
  const types = files.flatMap((src) => [
    ...[...src.matchAll(/\btype\s+([A-Z]\w*)/g)].map((m) => m[1]!),
    ...[...src.matchAll(/export type \{([^}]*)\}/g)].flatMap((m) => m[1]!.split(',').map((n) => n.trim()).filter(Boolean)),
  ]);
  assert.ok(types.length > 10, 'found the type exports');
  const missing = [...new Set(types)].filter((name) => !readme.includes(name));
  assert.equal(missing, []);
});

test('every public member of Overlay2Driver is documented', () => {
  // the declaration file tsc wrote: public members carry no `private`/`protected` modifier
  const dts = readFileSync(join(root, 'dist', 'src', 'driver.d.ts'), 'utf8');
  const body = dts.slice(dts.indexOf('export declare class Overlay2Driver'));
  // public: no private/protected modifier and no `@internal` in the doc comment just above
  const members = [...body.slice(0, body.indexOf('\n}')).matchAll(/(\/\*\*(?:(?!\*\/)[\s\S])*\*\/\s*)?^ {4}(?!private |protected )(?:static |readonly |get |set )*(\w+)[(:<]/gm)]
    .filter((m) => !m[1]?.includes('@internal')).map((m) => m[2]!).filter((n) => n !== 'constructor');
  assert.ok(members.includes('create') && members.includes('init') && members.includes('maxDepth'), members.join(' '));
  const missing = [...new Set(members)].filter((name) => !code(name));
  assert.equal(missing, []);
});

test('every CLI command and option is documented', () => {
  const missing: string[] = [];
  for (const c of COMMANDS) {
    if (!new RegExp(`^ {2}${c.name}\\b`, 'm').test(readme)) missing.push(c.name);
    for (const [option, spec] of Object.entries(c.options)) {
      if (!readme.includes(`--${option}`)) missing.push(`${c.name} --${option}`);
      if (spec.short && !readme.includes(`-${spec.short}`)) missing.push(`${c.name} -${spec.short}`);
    }
  }
  assert.equal(missing, []);
});

test('the README\'s CLI reference is what `overlay2 help` prints (scripts/cli-reference.mjs writes it)', () => {
  const m = /<!-- cli-help: [^\n]*-->\n```\n([\s\S]*?)```\n<!-- \/cli-help -->/.exec(readme);
  assert.ok(m, 'README has the generated CLI reference block');
  const help = spawnSync(process.execPath, [CLI_BIN, 'help'], { encoding: 'utf8' });
  assert.is(help.status, 0, help.stderr);
  assert.fixture(m![1]!, help.stdout, 'the command table changed: run `node scripts/cli-reference.mjs`');
});

test('the user\'s part comes first: install, quick start, API, CLI, Docker, containerd, thin layers, then how it is built', () => {
  const titles = [...readme.matchAll(/^## (.*)$/gm)].map((t) => t[1]!);
  const at = (prefix: string) => titles.findIndex((t) => t.startsWith(prefix));
  const order = ['Install', 'Quick start', 'The API', 'The CLI', 'Docker', 'containerd', 'Thin layers', 'How it is built', 'Tests and benchmarks'].map(at);
  assert.not.ok(order.includes(-1), titles.join(' | '));
  assert.equal(order, [...order].sort((a, b) => a - b), titles.join(' | '));
  assert.ok(readme.indexOf('## Install') < 3000, 'Install is on the first screen');
});

test.run();
