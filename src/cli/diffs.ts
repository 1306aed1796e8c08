// Diff commands: diff, apply, diffsize, changes.
import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { CommandContext } from './command.js';
import { write, writeStreaming, stdout } from './output.js';
import type { Overlay2Driver } from '../driver.js';
import { checkOutputFile, errnoWords, inputError, outputError } from '../image/file-paths.js';
import { withControl } from './image-commands.js';
import { progressMode } from './progress-line.js';
import { escapeBytes } from '../util/byte-names.js';

const str = (v: string | boolean | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

async function parentFor(d: Overlay2Driver, id: string, values: CommandContext['values']): Promise<string> {
  return str(values.parent) ?? d.parentOf(id);
}

export async function diff({ args: [id], values, open, usage }: CommandContext): Promise<number> {
  const output = str(values.output);
  if (!output && stdout().isTTY) usage('refusing to write a tar to a terminal: use -o FILE or a pipe');
  if (output) checkOutputFile(output);
  const d = await open();
  const parent = await parentFor(d, id!, values);
  await withControl('diff', progressMode(values), async (control) => {
    const tar = await d.diff(id!, parent, { xattrs: values['all-xattrs'] ? 'all' : 'docker', ...control });
    const file = output ? createWriteStream(output) : null;
    try {
      await pipeline(tar, file ?? stdout());
    } catch (e) {
      // the file's own failure (full disk, removed directory) names the file; the layer's pass through
      throw file !== null && file.errored === e ? outputError(output!, errnoWords(e), e) : e;
    }
  });
  return 0;
}

/** Opens the input before anything else happens, so a missing file is one line and changes nothing. */
function openInput(path: string | undefined): Readable {
  if (path === undefined) return process.stdin;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw inputError(path, e);
  }
  return createReadStream('', { fd });
}

export async function apply({ args: [id], values, open }: CommandContext): Promise<number> {
  const input = openInput(str(values.input));
  const d = await open();
  const parent = await parentFor(d, id!, values);
  const size = await withControl('apply', progressMode(values), (control) => {
    // an interrupt must not wait for the next chunk of a pipe that is slow or idle
    control.signal?.addEventListener('abort', () => input.destroy(control.signal!.reason as Error), { once: true });
    return d.applyDiff(id!, parent, input, control);
  });
  write(`${size}\n`);
  return 0;
}

export async function diffsize({ args: [id], values, open }: CommandContext): Promise<number> {
  const d = await open();
  write(`${await d.diffSize(id!, await parentFor(d, id!, values))}\n`);
  return 0;
}

export async function changes({ args: [id], values, open }: CommandContext): Promise<number> {
  const d = await open();
  const stream = d.changesStream(id!, await parentFor(d, id!, values));
  // written as the walk hands the changes out: the list is never whole in memory (the output is
  // byte for byte what one JSON.stringify / join of the whole list gave)
  let first = true;
  for await (const chunk of stream.chunks()) {
    let text = '';
    // --json: a path that is not UTF-8 keeps its bytes as lone surrogates (README: changes --json)
    if (values.json) {
      for (const c of chunk) {
        text += (first ? '[' : ',') + JSON.stringify({ path: escapeBytes(c.pathBytes), kind: c.kind });
        first = false;
      }
    } else {
      for (const c of chunk) text += `${c.kind} ${c.path}\n`;
    }
    await writeStreaming(text);
  }
  if (values.json) await writeStreaming(first ? '[]\n' : ']\n');
  return 0;
}
