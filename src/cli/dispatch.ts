// Parsing and running one CLI command line: `[--home DIR] [-o key=value]... COMMAND [args]`, options
// anywhere. Shared by the bin (main.ts: one line from argv) and `overlay2 batch` (one per input line).
// Startup cost matters (scripts call this hundreds of times): this file imports only the command
// table; a command's handler, and through it the driver, is imported when that command runs.
import { parseArgs } from 'node:util';
import { COMMANDS, findCommand } from './commands.js';
import { Interrupted, type CommandSpec, type OptionSpec, type CommandContext, type RunOptions, type Outcome } from './command.js';
import { openDriver } from './open-driver.js';
import { packageVersion } from '../version.js';
import { write, isBrokenPipe } from './output.js';
import { DRIVER_OPTION_KEYS, parseDriverOptions, parseSize } from '../options.js';
import { validateId } from '../layout/ids.js';
import { Overlay2Error } from '../errors.js';
import { missingTop, removeFreshHome } from './fresh-home.js';

const DEFAULT_HOME = '/var/lib/overlay2';

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  home: { type: 'string', arg: 'DIR', help: `the driver home (default: $OVERLAY2_HOME, else ${DEFAULT_HOME})` },
  opt: { type: 'string', short: 'o', arg: 'key=value', help: `a driver option (repeatable): ${DRIVER_OPTION_KEYS.join(', ')}` },
  help: { type: 'boolean', short: 'h', help: 'show help' },
  version: { type: 'boolean', short: 'V', help: 'print the version' },
};

/** A command line that is wrong in itself (exit 2): said with the command's usage, before any home is
 *  opened. Its message never repeats the command's name: failure() puts it in front. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: CommandSpec) { super(message); }
}

/** The summary goes on the usage line's own line when the usage is wider than this. */
const USAGE_COLUMN = 46;

function overview(): string {
  const groups = [...new Set(COMMANDS.map((c) => c.group))];
  const lines = ['usage: overlay2 [--home DIR] [-o key=value]... COMMAND [args]   (options may also follow the command)', ''];
  for (const g of groups) {
    lines.push(`${g}:`);
    for (const c of COMMANDS.filter((x) => x.group === g)) {
      if (c.usage.length < USAGE_COLUMN) lines.push(`  ${c.usage.padEnd(USAGE_COLUMN + 1)}${c.summary}`);
      else lines.push(`  ${c.usage}`, `  ${' '.repeat(USAGE_COLUMN + 1)}${c.summary}`);
    }
  }
  lines.push('', 'Options (before or after the command):');
  lines.push(...optionLines(GLOBAL_OPTIONS));
  lines.push('', 'overlay2 help COMMAND (or COMMAND --help) describes one command.',
    'Exit codes: 0 ok; 1 the command failed; 2 a usage error (the command line itself is wrong, nothing was',
    'done); 130 interrupted by Ctrl-C (SIGINT), 143 by SIGTERM. exists: 0 yes, 1 no, 2 an error or an',
    'incomplete layer.');
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
    throw new UsageError(msg, c);
  }
}

/** Commands that cannot share a batch's stdin/stdout, and the option that frees them. */
const BATCH_STREAMS: Record<string, (v: Values, args: string[]) => string | null> = {
  diff: (v) => (typeof v.output === 'string' ? null : 'needs -o FILE in a batch'),
  apply: (v) => (typeof v.input === 'string' ? null : 'needs -i FILE in a batch'),
  load: (_, [source]) => (source === '-' ? 'cannot read stdin in a batch: give FILE or DIR' : null),
};
const NOT_IN_BATCH = new Set(['batch', 'plugin', 'demo']);

/** What runCli learns while a line runs: the command, and the home its open found missing. */
interface Call {
  spec?: CommandSpec;
  /** the bin's own call (a batch keeps its homes open across lines): the topmost directory of the
   *  home that did not exist before the open (null: the home existed) */
  fresh?: { top: string | null; home: string };
}

async function dispatch(argv: string[], run: RunOptions, call: Call): Promise<number> {
  const at = commandIndex(argv);
  const name = at >= 0 ? argv[at]! : undefined;
  const pre = at >= 0 ? argv.slice(0, at).filter((a) => a !== '--') : argv;
  const post = at >= 0 ? argv.slice(at + 1) : [];

  if (name === 'help') {
    const topic = parse(post, undefined, false).positionals[0];
    if (topic === undefined) { write(overview() + '\n'); return 0; }
    const c = findCommand(topic);
    if (!c) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
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
      ? `needs ${spec.positionals.slice(args.length).join(' ')}`
      : `unexpected argument ${JSON.stringify(args[most])}`, spec);
  }
  const home = typeof values.home === 'string' ? values.home : (process.env.OVERLAY2_HOME || DEFAULT_HOME);
  checkArguments(spec, args, values, home);
  if (run.batch) {
    if (NOT_IN_BATCH.has(spec.name)) throw new UsageError('cannot run inside a batch', spec);
    const why = BATCH_STREAMS[spec.name]?.(values, args);
    if (why) throw new UsageError(why, spec);
    values['no-progress'] = true;
  }
  const open = run.open ?? openDriver;
  const ctx: CommandContext = {
    args,
    values: values as CommandContext['values'],
    home,
    open: () => {
      // a home this call makes and then fails in is removed again (src/cli/fresh-home.ts)
      if (spec.writes && !run.open) call.fresh ??= { top: missingTop(home), home };
      return open(home, values.opt as string[], spec.writes);
    },
    usage: (message) => { throw new UsageError(message, spec); },
    runLine: runCli,
  };
  call.spec = spec;
  const handler = await spec.load();
  return handler(ctx);
}

/**
 * Everything about the command line that can be checked without its home: the home is an absolute
 * path, every -o is a known driver option with a valid value, every layer id can name a layer, every
 * typed option value parses. A failure here is a usage error (exit 2) and nothing has been opened.
 */
function checkArguments(spec: CommandSpec, args: string[], values: Values, home: string): void {
  const usage = (message: string): never => { throw new UsageError(message, spec); };
  if (!home.startsWith('/')) usage(`the home must be an absolute path (--home DIR or $OVERLAY2_HOME), got ${JSON.stringify(home)}`);
  try {
    parseDriverOptions((values.opt as string[] | undefined) ?? []);
  } catch (e) {
    if (e instanceof Overlay2Error) usage(`-o: ${e.message.replace(/^overlay2: /, '')}`);
    throw e;
  }
  spec.positionals.forEach((name, i) => {
    if (name === 'ID' || name === 'TOP') checkId(args[i]!, usage);
  });
  for (const [name, o] of Object.entries(spec.options)) {
    const v = values[name];
    if (typeof v !== 'string' || o.value === undefined) continue;
    if (o.value === 'id') checkId(v, usage, `--${name}`);
    else if (o.value === 'size') {
      try { parseSize(v, `--${name}`); } catch { usage(`--${name} takes a size in binary units (10G, 512M, 1.5GiB), not ${JSON.stringify(v)}`); }
    } else if (o.value === 'seconds') {
      if (!/^\d+(\.\d+)?$/.test(v)) usage(`--${name} takes a number of seconds, not ${JSON.stringify(v)}`);
    } else if (!o.value.includes(v)) usage(`--${name} is ${o.value.join(' or ')}, not ${JSON.stringify(v)}`);
  }
  spec.check?.(values, usage);
}

function checkId(id: string, usage: (m: string) => never, what?: string): void {
  try {
    validateId(id);
  } catch (e) {
    if (e instanceof Overlay2Error) usage(`${what ? `${what}: ` : ''}${e.message.replace(/^overlay2: /, '')}`);
    throw e;
  }
}

/** Runs one command line; never throws: a failure is its exit code and one line. */
export async function runCli(argv: string[], run: RunOptions = {}): Promise<Outcome> {
  const call: Call = {};
  let outcome: Outcome;
  try {
    outcome = { code: await dispatch(argv, run, call) };
  } catch (e) {
    outcome = failure(e, call.spec);
  }
  if (outcome.code !== 0 && call.fresh?.top) removeFreshHome(call.fresh.top, call.fresh.home);
  return outcome;
}

function failure(e: unknown, spec: CommandSpec | undefined): Outcome {
  if (isBrokenPipe(e)) return { code: 0 };
  if (e instanceof UsageError) {
    const c = e.command;
    const hint = c ? `usage: overlay2 ${c.usage} (overlay2 help ${c.name})` : 'see overlay2 help';
    return { code: 2, error: `overlay2: ${c ? `${c.name}: ` : ''}${e.message} — ${hint}` };
  }
  if (e instanceof Interrupted) return { code: e.exitCode, error: e.message };
  const err = e as Error;
  const message = String(err?.message ?? e).split('\n')[0]!.replace(/^(overlay2: )+/, '');
  return { code: spec?.errorExit ?? 1, error: `overlay2: ${message}`, stack: err?.stack };
}
