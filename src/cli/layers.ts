// Layer commands: create, remove, exists, ls, metadata.
import { join } from 'node:path';
import type { CommandContext } from './command.js';
import { write } from './output.js';
import { interruptedApply, markedIncomplete } from '../apply/leftovers.js';
import { leftoversPossible } from '../layout/home-users.js';

const str = (v: string | boolean | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

export async function create({ args: [id], values, open }: CommandContext): Promise<number> {
  const d = await open();
  const opts = values.size !== undefined ? { storageOpt: { size: String(values.size) } } : {};
  if (values.rw) await d.createReadWrite(id!, str(values.parent), opts);
  else await d.create(id!, str(values.parent), opts);
  return 0;
}

export async function remove({ args: [id], values, open }: CommandContext): Promise<number> {
  await (await open()).remove(id!, { force: values.force === true });
  return 0;
}

/** 0: the layer exists; 1: it does not; 2: an error — and a layer an interrupted apply left (it is
 *  there, but not what its apply would have made: a script must not take it as done). */
export async function exists({ args: [id], open, home }: CommandContext): Promise<number> {
  if (!(await (await open()).exists(id!))) return 1;
  const why = interruptedApply(join(home, id!));
  if (why !== null) throw new Error(`overlay2: layer ${id} is incomplete: ${why}`);
  return 0;
}

/** The ids, one a line (stdout stays a list a script can read); a layer an interrupted apply left is
 *  said on stderr too. --json: such a layer carries "incomplete" (why) beside id, parent, size, mounted. */
export async function ls({ values, open, home }: CommandContext): Promise<number> {
  const d = await open();
  const rows = values.json ? await d.layers() : (await d.list()).map((id) => ({ id }));
  const incomplete = incompleteLayers(home, rows.map(({ id }) => id));
  if (values.json) write(JSON.stringify(rows.map((r) => (incomplete.has(r.id) ? { ...r, incomplete: incomplete.get(r.id) } : r))) + '\n');
  else write(rows.map((r) => r.id + '\n').join(''));
  for (const [id, why] of incomplete) console.error(`overlay2: layer ${id} is incomplete: ${why}`);
  return 0;
}

/** The layers among `ids` an interrupted apply left, each with why. */
function incompleteLayers(home: string, ids: string[]): Map<string, string> {
  // a cut-short apply leaves more than .incomplete only where a user of the home died mid-work
  if (!leftoversPossible(home)) return markedIncomplete(home, ids);
  const found = new Map<string, string>();
  for (const id of ids) {
    const why = interruptedApply(join(home, id));
    if (why !== null) found.set(id, why);
  }
  return found;
}

export async function metadata({ args: [id], open }: CommandContext): Promise<number> {
  write(JSON.stringify(await (await open()).getMetadata(id!), null, 2) + '\n');
  return 0;
}
