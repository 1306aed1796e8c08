// `overlay2 plugin`: serves the driver to dockerd as a graphdriver plugin until SIGTERM or SIGINT,
// then shuts down cleanly (in-flight calls finish or are aborted, everything unmounted, socket removed).
// `overlay2 plugin bundle -o DIR`: writes a managed plugin (config.json + rootfs/) for `docker plugin create`.
import type { CommandContext } from './command.js';
import { servePlugin, writePluginBundle } from '../plugin/index.js';
import { settingsOptions } from '../plugin/managed.js';

export async function plugin(ctx: CommandContext): Promise<number> {
  const { values, usage, args } = ctx;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  if (args[0] !== undefined && args[0] !== 'bundle') usage(`unknown subcommand ${JSON.stringify(args[0])} (only bundle)`);
  if (args[0] === 'bundle') return bundle(ctx);
  if (values.output !== undefined) usage('-o DIR belongs to `plugin bundle`');
  const grace = values.grace === undefined ? undefined : Number(str(values.grace));
  if (grace !== undefined && !(grace >= 0)) usage(`--grace needs a number of seconds, got ${values.grace}`);
  const propagatedMount = str(values['propagated-mount']);
  if (propagatedMount !== undefined && !propagatedMount.startsWith('/')) usage(`--propagated-mount needs an absolute path, got ${propagatedMount}`);
  // debug, info or error: the command table refuses any other
  const level = str(values['log-level']) ?? 'info';
  const log = (line: string): void => console.error(`overlay2 plugin: ${line}`);

  const handle = await servePlugin({
    name: str(values.name),
    socket: str(values.socket),
    // only an explicit --home: otherwise the Home dockerd sends in GraphDriver.Init
    home: str(values.home),
    propagatedMount,
    // a managed plugin's settings (`docker plugin set`) reach it as its environment
    driverOptions: propagatedMount === undefined ? undefined : settingsOptions(process.env),
    graceMs: grace === undefined ? undefined : grace * 1000,
    // at debug a failure is in its call's line already
    onError: level === 'debug' ? undefined : log,
    onCall: level === 'debug' ? log : undefined,
  });
  if (level !== 'error') {
    log(propagatedMount === undefined
      ? `serving ${handle.name} on ${handle.socket} (dockerd --experimental --storage-driver ${handle.name})`
      : `serving on ${handle.socket} as a managed plugin (homes inside ${propagatedMount})`);
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  if (level !== 'error') log(`${signal}: finishing calls in flight, unmounting, removing ${handle.socket}`);
  await handle.close();
  return 0;
}

async function bundle({ values, usage }: CommandContext): Promise<number> {
  const dir = typeof values.output === 'string' ? values.output : usage('bundle needs -o DIR');
  for (const o of ['socket', 'grace', 'propagated-mount', 'log-level']) if (values[o] !== undefined) usage(`--${o} is not an option of plugin bundle`);
  const made = writePluginBundle(dir, { name: typeof values.name === 'string' ? values.name : undefined });
  const mib = (made.bytes / (1 << 20)).toFixed(0);
  console.log(`${made.dir}: config.json and rootfs/ (${mib} MiB) for the managed plugin ${made.name}`);
  console.log(`next: docker plugin create ${made.name} ${made.dir} && docker plugin enable ${made.name}`);
  // dockerd finds the plugin under its full reference, the tag included
  const driver = /:[^/]*$/.test(made.name) ? made.name : `${made.name}:latest`;
  console.log(`then: dockerd --experimental --storage-driver ${driver}`);
  return 0;
}
