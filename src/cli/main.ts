#!/usr/bin/env node
// overlay2 [--home DIR] [-o key=value]... COMMAND [args]
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Overlay2Driver } from '../driver.js';
import { Overlay2Error } from '../errors.js';
import { runDemo } from './demo.js';
import { runPluginCommand, PLUGIN_USAGE } from './plugin-command.js';

const USAGE = `usage: overlay2 [--home DIR] [-o key=value]... COMMAND [args]

Layers:
  create ID [--parent P] [--rw] [--size S]   create a layer (--rw: read-write, --size: quota)
  remove ID                                  remove a layer
  exists ID                                  exit 0 if the layer exists, 1 if not
  ls                                         list layer ids
  metadata ID                                LowerDir/UpperDir/WorkDir/MergedDir as JSON
Mounts:
  mount ID [--label L]                       mount the layer, print its root path
  unmount ID                                 release one mount reference
  cleanup                                    unmount everything under the home
Diffs:
  diff ID [--parent P] [-o FILE]             the layer as a tar (stdout or FILE)
  apply ID [--parent P] [-i FILE]            apply a layer tar (stdin or FILE), print bytes
  diffsize ID [--parent P]                   bytes the layer adds
  changes ID [--parent P] [--json]           changed paths, like docker diff
Driver:
  status [--json]                            backing filesystem and features
  demo                                       build, mount, diff and clean up a sample stack
Docker:
${PLUGIN_USAGE}

Home: --home, else $OVERLAY2_HOME, else /var/lib/overlay2.
Driver options (-o): overlay2.override_kernel_check=BOOL, overlay2.size=SIZE`;

class UsageError extends Error {}

function usage(msg: string): never {
  throw new UsageError(msg);
}

interface Global {
  home: string;
  options: string[];
  rest: string[];
}

function parseGlobal(argv: string[]): Global {
  let home = process.env.OVERLAY2_HOME || '/var/lib/overlay2';
  const options: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--home') {
      home = argv[++i] ?? usage('--home needs a directory');
    } else if (a.startsWith('--home=')) {
      home = a.slice(7);
    } else if (a === '-o' || a === '--opt') {
      options.push(argv[++i] ?? usage(`${a} needs key=value`));
    } else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('-')) {
      usage(`unknown option ${a}`);
    } else {
      break;
    }
  }
  return { home, options, rest: argv.slice(i) };
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) usage(`expected ${what}`);
  return positionals[0];
}

async function main(argv: string[]): Promise<number> {
  const g = parseGlobal(argv);
  const [command, ...args] = g.rest;
  if (!command) usage('missing COMMAND');
  const open = () => Overlay2Driver.init(g.home, g.options);
  const parse = (options: ParseArgsConfig['options']): { values: Record<string, string | boolean | undefined>; positionals: string[] } => {
    try {
      const r = parseArgs({ args, options, allowPositionals: true, strict: true });
      return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
    } catch (e) {
      return usage((e as Error).message);
    }
  };

  switch (command) {
    case 'plugin':
      return runPluginCommand(args, usage);
    case 'demo': {
      parse({});
      await runDemo();
      return 0;
    }
    case 'create': {
      const { values, positionals } = parse({ parent: { type: 'string' }, rw: { type: 'boolean' }, size: { type: 'string' } });
      const id = one(positionals, 'ID');
      const d = await open();
      const opts = values.size !== undefined ? { storageOpt: { size: String(values.size) } } : {};
      if (values.rw) await d.createReadWrite(id, values.parent as string | undefined, opts);
      else await d.create(id, values.parent as string | undefined, opts);
      return 0;
    }
    case 'remove': {
      const { positionals } = parse({});
      await (await open()).remove(one(positionals, 'ID'));
      return 0;
    }
    case 'exists': {
      const { positionals } = parse({});
      return (await (await open()).exists(one(positionals, 'ID'))) ? 0 : 1;
    }
    case 'ls': {
      parse({});
      for (const id of await (await open()).list()) console.log(id);
      return 0;
    }
    case 'metadata': {
      const { positionals } = parse({});
      console.log(JSON.stringify(await (await open()).getMetadata(one(positionals, 'ID')), null, 2));
      return 0;
    }
    case 'mount': {
      const { values, positionals } = parse({ label: { type: 'string' } });
      console.log(await (await open()).get(one(positionals, 'ID'), values.label as string | undefined));
      return 0;
    }
    case 'unmount': {
      const { positionals } = parse({});
      await (await open()).put(one(positionals, 'ID'));
      return 0;
    }
    case 'cleanup': {
      parse({});
      await (await open()).cleanup();
      return 0;
    }
    case 'status': {
      const { values } = parse({ json: { type: 'boolean' } });
      const status = (await open()).status();
      if (values.json) console.log(JSON.stringify(Object.fromEntries(status), null, 2));
      else for (const [k, v] of status) console.log(`${k}: ${v}`);
      return 0;
    }
    case 'diff': {
      const { values, positionals } = parse({ parent: { type: 'string' }, output: { type: 'string', short: 'o' }, 'all-xattrs': { type: 'boolean' } });
      const d = await open();
      const id = one(positionals, 'ID');
      if (!values.output && process.stdout.isTTY) usage('refusing to write a tar to a terminal: use -o FILE or a pipe');
      const tar = await d.diff(id, (values.parent as string | undefined) ?? await d.parentOf(id), { xattrs: values['all-xattrs'] ? 'all' : 'docker' });
      await pipeline(tar, values.output ? createWriteStream(values.output as string) : process.stdout);
      return 0;
    }
    case 'apply': {
      const { values, positionals } = parse({ parent: { type: 'string' }, input: { type: 'string', short: 'i' } });
      const d = await open();
      const id = one(positionals, 'ID');
      const input = values.input ? createReadStream(values.input as string) : process.stdin;
      console.log(await d.applyDiff(id, (values.parent as string | undefined) ?? await d.parentOf(id), input));
      return 0;
    }
    case 'diffsize': {
      const { values, positionals } = parse({ parent: { type: 'string' } });
      const d = await open();
      const id = one(positionals, 'ID');
      console.log(await d.diffSize(id, (values.parent as string | undefined) ?? await d.parentOf(id)));
      return 0;
    }
    case 'changes': {
      const { values, positionals } = parse({ parent: { type: 'string' }, json: { type: 'boolean' } });
      const d = await open();
      const id = one(positionals, 'ID');
      const changes = await d.changes(id, (values.parent as string | undefined) ?? await d.parentOf(id));
      if (values.json) console.log(JSON.stringify(changes));
      else process.stdout.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
      return 0;
    }
    default:
      return usage(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`overlay2: ${e.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (e instanceof Overlay2Error) {
      console.error(e.message.startsWith('overlay2:') ? e.message : `overlay2: ${e.message}`);
      process.exitCode = 1;
    } else {
      const err = e as NodeJS.ErrnoException;
      console.error(`overlay2: ${err?.message ?? String(e)}`);
      process.exitCode = 1;
    }
  },
);
