// Layer commands: create, remove, exists, ls, metadata.
import type { CommandContext } from './command.js';
import { write } from './output.js';

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

export async function exists({ args: [id], open }: CommandContext): Promise<number> {
  return (await (await open()).exists(id!)) ? 0 : 1;
}

export async function ls({ values, open }: CommandContext): Promise<number> {
  const d = await open();
  if (values.json) write(JSON.stringify(await d.layers()) + '\n');
  else write((await d.list()).map((id) => id + '\n').join(''));
  return 0;
}

export async function metadata({ args: [id], open }: CommandContext): Promise<number> {
  write(JSON.stringify(await (await open()).getMetadata(id!), null, 2) + '\n');
  return 0;
}
