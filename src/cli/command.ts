// What a CLI command is: one entry of the command table (src/cli/commands.ts). The table holds only
// metadata and a lazy loader, so `overlay2 exists ID` imports the driver but never the diff engine.
import type { Overlay2Driver } from '../driver.js';

export type OptionSpec = {
  type: 'string' | 'boolean';
  short?: string;
  /** shown in `overlay2 help COMMAND`: '--parent P  the parent layer (default: the recorded one)' */
  help: string;
  /** the value's name in help ('P', 'FILE'), for string options */
  arg?: string;
  /** a string option that may be given more than once (its value is then a string[]) */
  multiple?: boolean;
  /** what the value must be, checked before the home is opened (a bad one is a usage error, exit 2):
   *  a layer id, a size in binary units (10G), a number of seconds, or one of the listed words */
  value?: 'id' | 'size' | 'seconds' | readonly string[];
};

export interface CommandContext {
  /** the positionals after the command name */
  args: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  home: string;
  /** Opens the home: read-only unless the command's spec says it writes; mount references persist. */
  open(): Promise<Overlay2Driver>;
  /** Throws a usage error (one line, exit 2). */
  usage(message: string): never;
  /** Runs another command line as the bin runs argv (what `overlay2 batch` does per input line). */
  runLine(argv: string[], options: RunOptions): Promise<Outcome>;
}

/** How a command line opens its home; `overlay2 batch` keeps one driver per home across lines. */
export type HomeOpener = (home: string, options: string[], writes: boolean) => Promise<Overlay2Driver>;

export interface RunOptions {
  open?: HomeOpener;
  /** inside `overlay2 batch`: stdin and stdout belong to the batch, no progress line */
  batch?: boolean;
}

/** What a command line came to: its exit code and, for a failure, the one line for stderr. */
export interface Outcome {
  code: number;
  error?: string;
  stack?: string;
}

/** A command stopped by SIGINT or SIGTERM: exits 128 + the signal's number (130, 143), as a shell
 *  reports a process the signal killed, after the command has cleaned up. */
export class Interrupted extends Error {
  constructor(what: string, readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`overlay2: ${what} interrupted (${signal})`);
  }

  get exitCode(): number {
    return this.signal === 'SIGINT' ? 130 : 143;
  }
}

/** A handler returns the exit code. */
export type Handler = (ctx: CommandContext) => Promise<number>;

export interface CommandSpec {
  name: string;
  /** the part after `overlay2 `: 'create ID [--parent P] [--rw] [--size S]' */
  usage: string;
  /** one line for the overview */
  summary: string;
  /** a paragraph for `overlay2 help NAME` */
  description?: string;
  group: string;
  /** names of the required positionals, in order ('ID') */
  positionals: string[];
  /** names of positionals that may follow the required ones (`plugin [bundle]`) */
  optionalPositionals?: string[];
  options: Record<string, OptionSpec>;
  /** true when the command may create or change anything in the home (opens it read-write) */
  writes: boolean;
  /** exit code for errors other than usage errors (exists: 2, so 1 can mean "no") */
  errorExit?: number;
  /** checks across options (create: --size needs --rw), before the home is opened; calls usage() */
  check?: (values: CommandContext['values'], usage: (message: string) => never) => void;
  /** the handler, imported only when this command runs */
  load: () => Promise<Handler>;
}
