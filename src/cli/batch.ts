// `overlay2 batch [-f FILE] [--json]`: many command lines in one process, read from stdin (or FILE)
// one per line, each written as after `overlay2` on a shell command line. Node's start-up and the
// home's init are paid once, not per command (a 300-layer create loop: one process, not 300). Each
// command gets one result line, in order; the exit status is the worst of theirs.
import { createReadStream, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { CommandContext, HomeOpener, Outcome } from './command.js';
import { openDriver } from './open-driver.js';
import { collectOutput, write } from './output.js';
import type { Overlay2Driver } from '../driver.js';
import { inputError } from '../image/file-paths.js';

/**
 * Splits a line into words as a shell would for plain arguments: blanks separate, '…' is literal,
 * "…" and a backslash escape (\" \\ inside double quotes, any character outside). Nothing is
 * expanded ($, *, ~ stay as written) and there are no operators: a line is one command.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated \' quote');
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= '';
      for (i++; ; i++) {
        if (i >= line.length) throw new Error('unterminated " quote');
        const d = line[i]!;
        if (d === '"') break;
        if (d === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i];
        else word += d;
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('a backslash ends the line');
      word = (word ?? '') + line[++i];
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** One driver per home and options for the whole batch; opened read-write once a line writes. */
function sharedHomes(): HomeOpener {
  const opened = new Map<string, { writes: boolean; driver: Promise<Overlay2Driver> }>();
  return (home, options, writes) => {
    const key = JSON.stringify([home, options]);
    const have = opened.get(key);
    if (have && (have.writes || !writes)) return have.driver;
    const driver = openDriver(home, options, writes);
    opened.set(key, { writes, driver });
    // a failed open (say, a home that does not exist yet) is tried again by the next line
    driver.catch(() => { if (opened.get(key)?.driver === driver) opened.delete(key); });
    return driver;
  };
}

/** The command's output on one line: JSON made compact, other lines joined by a space. */
function oneLine(output: string): string {
  const text = output.replace(/\n$/, '');
  if (!text.includes('\n')) return text;
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text.split('\n').join(' ');
  }
}

function openInput(path: string | undefined): Readable {
  if (path === undefined) return process.stdin;
  try {
    return createReadStream('', { fd: openSync(path, 'r') });
  } catch (e) {
    throw inputError(path, e, 'file');
  }
}

export async function batch({ values, home, runLine }: CommandContext): Promise<number> {
  const input = openInput(typeof values.file === 'string' ? values.file : undefined);
  const json = values.json === true;
  // the batch's own --home and -o are every line's defaults; a line's own options win
  const defaults = ['--home', home, ...((values.opt as string[] | undefined) ?? []).flatMap((o) => ['-o', o])];
  const open = sharedHomes();
  let worst = 0;
  let lineNo = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    let outcome: Outcome;
    let output = '';
    try {
      const words = splitWords(trimmed);
      ({ result: outcome, output } = await collectOutput(() => runLine([...defaults, ...words], { open, batch: true })));
    } catch (e) {
      outcome = { code: 2, error: `overlay2: batch line ${lineNo}: ${(e as Error).message}` };
    }
    worst = Math.max(worst, outcome.code);
    if (json) {
      write(JSON.stringify({ line: lineNo, exit: outcome.code, output: output.replace(/\n$/, ''), ...(outcome.error ? { error: outcome.error } : {}) }) + '\n');
    } else {
      const text = outcome.error ?? oneLine(output);
      write(`${outcome.code}${text ? ` ${text}` : ''}\n`);
    }
  }
  return worst;
}
