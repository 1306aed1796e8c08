#!/usr/bin/env node
// overlay2 [--home DIR] [-o key=value]... COMMAND [args] — the bin's entry: runs argv as one command
// line (src/cli/dispatch.ts), prints a failure as one line on stderr, exits with the command's code.
import { runCli } from './dispatch.js';

runCli(process.argv.slice(2)).then(({ code, error, stack }) => {
  if (error) console.error(error);
  if (stack && process.env.OVERLAY2_DEBUG) console.error(stack);
  process.exitCode = code;
});
