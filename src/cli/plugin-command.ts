// `overlay2 plugin`: serves the driver to dockerd as a graphdriver plugin until SIGTERM or SIGINT,
// then shuts down cleanly (in-flight calls finish or are aborted, everything unmounted, socket removed).
import { parseArgs } from 'node:util';
import { servePlugin, DEFAULT_PLUGIN_NAME } from '../plugin/index.js';

export const PLUGIN_USAGE = `  plugin [--name N] [--socket PATH] [--home DIR] [--grace SECONDS]
                                             serve dockerd's graphdriver plugin protocol (name
                                             default ${DEFAULT_PLUGIN_NAME}, socket /run/docker/plugins/N.sock,
                                             home: the one dockerd sends unless --home)`;

export async function runPluginCommand(args: string[], usage: (msg: string) => never): Promise<number> {
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({
      args,
      options: { name: { type: 'string' }, socket: { type: 'string' }, home: { type: 'string' }, grace: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | undefined>;
  } catch (e) {
    return usage((e as Error).message);
  }
  const grace = values.grace === undefined ? undefined : Number(values.grace);
  if (grace !== undefined && !(grace >= 0)) usage(`--grace needs a number of seconds, got ${values.grace}`);

  const handle = await servePlugin({
    name: values.name,
    socket: values.socket,
    home: values.home,
    graceMs: grace === undefined ? undefined : grace * 1000,
    onError: (line) => console.error(`overlay2 plugin: ${line}`),
  });
  console.error(`overlay2 plugin: serving ${handle.name} on ${handle.socket} (dockerd --experimental --storage-driver ${handle.name})`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  console.error(`overlay2 plugin: ${signal}: finishing calls in flight, unmounting, removing ${handle.socket}`);
  await handle.close();
  return 0;
}
