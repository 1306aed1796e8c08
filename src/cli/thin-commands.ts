// `overlay2 thin make|commit|show|check` (src/thin/): publishing thin images and looking at them.
import type { CommandContext } from './command.js';
import { write } from './output.js';
import { checkOutputFile } from '../image/file-paths.js';

const str = (v: string | boolean | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

export async function thin(ctx: CommandContext): Promise<number> {
  const [sub, id] = ctx.args as [string, string];
  switch (sub) {
    case 'make':
    case 'commit':
      return publish(ctx, sub, id);
    case 'show':
      return show(ctx, id);
    case 'check':
      return check(ctx, id);
    default:
      return ctx.usage(`unknown subcommand ${JSON.stringify(sub)} (make, commit, show, check)`);
  }
}

async function publish({ values, open, usage }: CommandContext, sub: 'make' | 'commit', id: string): Promise<number> {
  const repo = str(values.repo);
  const output = str(values.output);
  if (repo === undefined) usage('--repo R is required');
  if (output === undefined) usage('-o FILE is required');
  const parent = str(values.parent);
  if (sub === 'commit' && parent === undefined) usage('commit needs --parent P (the layer the changes are over)');
  const root = str(values.root);
  if (root !== undefined && !root.startsWith('/')) usage('--root must be an absolute path');
  checkOutputFile(output!); // before any layer is published
  const d = await open();
  const { makeThinImage, commitThinLayer, writeFileAtomically } = await import('../thin/publish.js');
  const opts = { repo: repo!, ...(root ? { root } : {}), ...(str(values.origin) ? { origin: str(values.origin) } : {}) };
  const r = sub === 'make' ? await makeThinImage(d, id, opts) : await commitThinLayer(d, id, parent!, opts);
  writeFileAtomically(output!, r.tar);
  if (values.json) write(JSON.stringify({ layers: r.layers, written: r.written, output }) + '\n');
  else write(r.manifest.toString());
  return 0;
}

async function show({ values, open }: CommandContext, id: string): Promise<number> {
  const d = await open();
  const thinId = d.thinLayers.nearestThin(id);
  if (thinId === null) throw new Error(`overlay2: layer ${id} is not a thin layer and has none below it`);
  const manifest = d.thinLayers.manifestOf(thinId)!;
  const info = {
    id, thinLayer: thinId, root: d.thinLayers.root, mountMethod: d.thinLayers.method,
    version: manifest.version, form: manifest.form,
    ...(manifest.origin !== undefined ? { origin: manifest.origin } : {}),
    ...(manifest.comment !== undefined ? { comment: manifest.comment } : {}),
    layers: manifest.layers.map((l) => ({ digest: l.digest, url: `cvmfs://${l.repo}/${l.path}` })),
  };
  if (values.json) {
    write(JSON.stringify(info, null, 2) + '\n');
    return 0;
  }
  const lines = [`layer ${id}: thin layer ${thinId}${thinId === id ? '' : ' below it'}`, `root ${info.root} (${info.mountMethod})`,
    `manifest ${manifest.form} version ${manifest.version}${manifest.origin ? `, origin ${manifest.origin}` : ''}`,
    'layers (base first):', ...info.layers.map((l) => `  ${l.digest}  ${l.url}`)];
  write(lines.join('\n') + '\n');
  return 0;
}

async function check({ values, open }: CommandContext, id: string): Promise<number> {
  const d = await open();
  const rows = await d.thinLayers.checkLowers(id);
  if (values.json) write(JSON.stringify(rows) + '\n');
  else for (const r of rows) write(`${r.error ? 'FAIL' : 'ok  '}  ${r.entry}  ${r.location.repo}/${r.location.path}${r.error ? '  ' + r.error : ''}\n`);
  if (rows.length === 0) {
    console.error(`overlay2: layer ${id} has no thin lowers`);
    return 1;
  }
  return rows.every((r) => r.error === null) ? 0 : 1;
}
