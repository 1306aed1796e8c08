// Parsing and running one CLI command line: `[--home DIR] [-o key=value]... COMMAND [args]`, options
// anywhere. Shared by the bin (main.ts: one line from argv) and `overlay2 batch` (one per input line).
// Startup cost matters (scripts call this hundreds of times): this file imports only the command
// table; a command's handler, and through it the driver, is imported when that command runs.
import { parseArgs } from 'node:util';
import { COMMANDS, findCommand } from './commands.js';
import type { CommandSpec, OptionSpec, CommandContext, RunOptions, Outcome } from './command.js';
import { openDriver } from './open-driver.js';
import { packageVersion } from '../version.js';
import { write, isBrokenPipe } from './output.js';

const DEFAULT_HOME = '/var/lib/overlay2';

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  home: { type: 'string', arg: 'DIR', help: `the driver home (default: $OVERLAY2_HOME, else ${DEFAULT_HOME})` },
  opt: { type: 'string', short: 'o', arg: 'key=value', help: 'a driver option: overlay2.override_kernel_check=BOOL, overlay2.size=SIZE (repeatable)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
  version: { type: 'boolean', short: 'V', help: 'print the version' },
};

export class UsageError extends Error {
  constructor(message: string, readonly command?: CommandSpec) { super(message); }
}

function overview(): string {
  const groups = [...new Set(COMMANDS.map((c) => c.group))];
  const width = Math.max(...COMMANDS.map((c) => c.usage.length)) + 2;
  const lines = ['usage: overlay2 [--home DIR] [-o key=value]... COMMAND [args]', ''];
  for (const g of groups) {
    lines.push(`${g}:`);
    for (const c of COMMANDS.filter((x) => x.group === g)) lines.push(`  ${c.usage.padEnd(width)}${c.summary}`);
  }
  lines.push('', 'Options (before or after the command):');
  lines.push(...optionLines(GLOBAL_OPTIONS));
  lines.push('', 'overlay2 help COMMAND (or COMMAND --help) describes one command.',
    'Exit codes: 0 ok, 1 error (exists: 1 = no such layer, 2 = error), 2 usage error.');
  return lines.join('\n');
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const flag = (name: string, o: OptionSpec) => `${o.short ? `-${o.short}, ` : '    '}--${name}${o.arg ? ` ${o.arg}` : ''}`;
  const width = Math.max(0, ...Object.entries(options).map(([n, o]) => flag(n, o).length)) + 2;
  return Object.entries(options).map(([n, o]) => `  ${flag(n, o).padEnd(width)}${o.help}`);
}

function commandHelp(c: CommandSpec): string {
  const lines = [`usage: overlay2 ${c.usage}`, '', c.description ?? `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.`];
  if (Object.keys(c.options).length > 0) lines.push('', 'Options:', ...optionLines(c.options));
  lines.push('', 'Global options: --home DIR, -o/--opt key=value (see overlay2 help)');
  return lines.join('\n');
}

/** parseArgs options for a command: the global ones, with the command's own short flags winning
 *  after the command (`diff -o FILE`), the global ones before it (`overlay2 -o k=v diff`). */
function parseConfig(c: CommandSpec | undefined, commandShortsWin: boolean) {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  const shorts = new Set(Object.values(c?.options ?? {}).map((o) => o.short).filter(Boolean));
  for (const [name, o] of Object.entries(GLOBAL_OPTIONS)) {
    const short = o.short && !(commandShortsWin && shorts.has(o.short)) ? o.short : undefined;
    config[name] = { type: o.type, ...(short ? { short } : {}), ...(name === 'opt' ? { multiple: true } : {}) };
  }
  for (const [name, o] of Object.entries(c?.options ?? {})) {
    const short = o.short && (commandShortsWin || !Object.values(GLOBAL_OPTIONS).some((g) => g.short === o.short)) ? o.short : undefined;
    config[name] = { type: o.type, ...(short ? { short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  return config;
}

/** Index of the command word: the first argument that is neither an option nor an option's value. */
function commandIndex(argv: string[]): number {
  const takesValue = new Set<string>();
  for (const spec of [GLOBAL_OPTIONS, ...COMMANDS.map((c) => c.options)]) {
    for (const [name, o] of Object.entries(spec)) {
      if (o.type !== 'string') continue;
      takesValue.add(`--${name}`);
      if (o.short) takesValue.add(`-${o.short}`);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (takesValue.has(a)) { i++; continue; }
    if (!a.startsWith('-') || a === '-') return i;
  }
  return -1;
}

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], c: CommandSpec | undefined, commandShortsWin: boolean): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: parseConfig(c, commandShortsWin), allowPositionals: true, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    const err = e as Error & { code?: string };
    const opt = /'([^']+)'/.exec(err.message)?.[1];
    const msg = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? `unknown option ${opt}`
      : err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' ? `option ${opt ?? ''} ${/argument missing/.test(err.message) ? 'needs a value' : 'takes no value'}`
      : err.message.split('\n')[0]!;
    throw new UsageError(c ? `${c.name}: ${msg}` : msg, c);
  }
}

/** Commands that cannot share a batch's stdin/stdout, and the option that frees them. */
const BATCH_STREAMS: Record<string, (v: Values, args: string[]) => string | null> = {
  diff: (v) => (typeof v.output === 'string' ? null : 'diff in a batch needs -o FILE'),
  apply: (v) => (typeof v.input === 'string' ? null : 'apply in a batch needs -i FILE'),
  load: (_, [source]) => (source === '-' ? 'load in a batch cannot read stdin: give FILE or DIR' : null),
};
const NOT_IN_BATCH = new Set(['batch', 'plugin', 'demo']);

async function dispatch(argv: string[], run: RunOptions, running: (spec: CommandSpec) => void): Promise<number> {
  const at = commandIndex(argv);
  const name = at >= 0 ? argv[at]! : undefined;
  const pre = at >= 0 ? argv.slice(0, at).filter((a) => a !== '--') : argv;
  const post = at >= 0 ? argv.slice(at + 1) : [];

  if (name === 'help') {
    const topic = parse(post, undefined, false).positionals[0];
    if (topic === undefined) { write(overview() + '\n'); return 0; }
    const c = findCommand(topic);
    if (!c) throw new UsageError(`help: unknown command ${JSON.stringify(topic)}`);
    write(commandHelp(c) + '\n');
    return 0;
  }
  const spec = name === undefined ? undefined : findCommand(name);
  if (name !== undefined && !spec) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
  const before = parse(pre, spec, false);
  const after = parse(post, spec, true);
  const values: Values = { ...before.values, ...after.values, opt: [...(before.values.opt as string[] ?? []), ...(after.values.opt as string[] ?? [])] };
  if (values.version) { write(`overlay2 ${packageVersion()}\n`); return 0; }
  if (values.help) { write((spec ? commandHelp(spec) : overview()) + '\n'); return 0; }
  if (!spec) throw new UsageError('missing COMMAND');

  const args = after.positionals;
  const most = spec.positionals.length + (spec.optionalPositionals?.length ?? 0);
  if (args.length < spec.positionals.length || args.length > most) {
    throw new UsageError(args.length < spec.positionals.length
      ? `${spec.name} needs ${spec.positionals.slice(args.length).join(' ')}`
      : `${spec.name}: unexpected argument ${JSON.stringify(args[most])}`, spec);
  }
  if (run.batch) {
    if (NOT_IN_BATCH.has(spec.name)) throw new UsageError(`${spec.name} cannot run inside a batch`, spec);
    const why = BATCH_STREAMS[spec.name]?.(values, args);
    if (why) throw new UsageError(why, spec);
    values['no-progress'] = true;
  }
  const home = typeof values.home === 'string' ? values.home : (process.env.OVERLAY2_HOME || DEFAULT_HOME);
  const open = run.open ?? openDriver;
  const ctx: CommandContext = {
    args,
    values: values as CommandContext['values'],
    home,
    open: () => open(home, values.opt as string[], spec.writes),
    usage: (message) => { throw new UsageError(`${spec.name}: ${message}`, spec); },
    runLine: runCli,
  };
  running(spec);
  const handler = await spec.load();
  return handler(ctx);
}

/** Runs one command line; never throws: a failure is its exit code and one line. */
export async function runCli(argv: string[], run: RunOptions = {}): Promise<Outcome> {
  let spec: CommandSpec | undefined;
  try {
    return { code: await dispatch(argv, run, (s) => { spec = s; }) };
  } catch (e) {
    return failure(e, spec);
  }
}

function failure(e: unknown, spec: CommandSpec | undefined): Outcome {
  if (isBrokenPipe(e)) return { code: 0 };
  if (e instanceof UsageError) {
    const c = e.command;
    const hint = c ? `usage: overlay2 ${c.usage} (overlay2 help ${c.name})` : 'see overlay2 help';
    return { code: 2, error: `overlay2: ${e.message} — ${hint}` };
  }
  const err = e as Error;
  const message = String(err?.message ?? e).split('\n')[0]!.replace(/^(overlay2: )+/, '');
  return { code: spec?.errorExit ?? 1, error: `overlay2: ${message}`, stack: err?.stack };
}
