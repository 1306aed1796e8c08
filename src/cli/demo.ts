// `overlay2 demo`: a tour of the driver on a throw-away home — import an image layer from a tar,
// change it through a mount, list the changes, export the diff, run a container layer on top.
import { promises as fsp, mkdtempSync, readdirSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { Overlay2Driver } from '../driver.js';
import { removeTree } from '../layout/remove-tree.js';

const log = (s = '') => process.stdout.write(s + '\n');
const step = (s: string) => log(`\n== ${s}`);

/** A small Debian-like root filesystem as an uncompressed tar. */
function baseImageTar(): Readable {
  const pack = tar.pack();
  const mtime = new Date('2024-01-01T00:00:00Z');
  const dir = (name: string) => pack.entry({ name, type: 'directory', mode: 0o755, mtime });
  const file = (name: string, body: string, mode = 0o644) => pack.entry({ name, mode, mtime }, body);
  for (const d of ['etc/', 'usr/', 'usr/bin/', 'usr/share/', 'usr/share/doc/', 'var/', 'var/log/']) dir(d);
  file('etc/os-release', 'PRETTY_NAME="Demo GNU/Linux 12"\nID=demo\n');
  file('etc/hostname', 'base\n');
  file('usr/bin/hello', '#!/bin/sh\necho hello from the base layer\n', 0o755);
  file('usr/share/doc/README', 'documentation of the base image\n');
  file('usr/share/doc/CHANGES', 'nothing yet\n');
  file('var/log/old.log', 'x'.repeat(4096));
  pack.entry({ name: 'bin', type: 'symlink', linkname: 'usr/bin', mtime });
  pack.finalize();
  return pack as unknown as Readable;
}

/** An indented listing of a tree: directories with "/", symlinks with their target, files with sizes. */
function tree(root: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root).sort()) {
    const p = join(root, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(`${prefix}${name}/`, ...tree(p, prefix + '  '));
    else if (st.isSymbolicLink()) out.push(`${prefix}${name} -> ${readlinkSync(p)}`);
    else out.push(`${prefix}${name}  ${st.size} B`);
  }
  return out;
}

export async function runDemo(): Promise<void> {
  const home = join(mkdtempSync(join(tmpdir(), 'overlay2-demo-')), 'overlay2');
  log(`overlay2 demo — a throw-away driver home at ${home}`);
  const driver = await Overlay2Driver.init(home);
  try {
    step('driver status (moby\'s keys)');
    for (const [k, v] of driver.status()) log(`  ${k}: ${v}`);

    step('1. image layer "base": create + applyDiff of a generated tar');
    await driver.create('base');
    const baseBytes = await driver.applyDiff('base', '', baseImageTar());
    log(`  applied ${baseBytes} bytes into ${join(home, 'base', 'diff')}`);

    step('2. layer "app" on top of base: changes made through its overlay mount');
    await driver.create('app', 'base');
    const app = await driver.get('app');
    await fsp.writeFile(join(app, 'etc/hostname'), 'app\n');
    await fsp.rm(join(app, 'var/log/old.log'));
    await fsp.mkdir(join(app, 'srv'));
    await fsp.writeFile(join(app, 'srv/server.js'), 'console.log("serving")\n');
    await fsp.rm(join(app, 'usr/share/doc'), { recursive: true });
    await fsp.mkdir(join(app, 'usr/share/doc'));
    await fsp.writeFile(join(app, 'usr/share/doc/README'), 'rewritten docs\n');
    await fsp.chmod(join(app, 'usr/bin/hello'), 0o700);
    await driver.put('app');
    log('  edited etc/hostname, deleted var/log/old.log, added srv/server.js,');
    log('  replaced usr/share/doc (the kernel marks it opaque), chmod usr/bin/hello');

    step('3. changes app vs base (docker diff), from the upper dir alone');
    for (const c of await driver.changes('app', 'base')) log(`  ${c.kind} ${c.path}`);
    log(`  diffSize: ${await driver.diffSize('app', 'base')} bytes`);

    step('4. diff app vs base: the layer tar a registry would store');
    const hash = createHash('sha256');
    const names: string[] = [];
    let bytes = 0;
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => { names.push(`${h.type === 'directory' ? 'd' : h.type === 'symlink' ? 'l' : '-'} ${h.name}`); stream.resume(); stream.on('end', next); });
    const tarStream = await driver.diff('app', 'base');
    await new Promise<void>((resolve, reject) => {
      tarStream.on('data', (chunk: Buffer) => { hash.update(chunk); bytes += chunk.length; extract.write(chunk); });
      tarStream.on("end", () => { extract.end(Buffer.alloc(0)); });
      tarStream.on('error', reject);
      extract.on('finish', resolve);
      extract.on('error', reject);
    });
    for (const n of names) log(`  ${n}`);
    log(`  ${bytes} bytes, diffID sha256:${hash.digest('hex')}`);

    step('5. container layer "ctr" (read-write) on app: the merged view');
    await driver.createReadWrite('ctr', 'app');
    const root = await driver.get('ctr');
    await fsp.writeFile(join(root, 'srv/state.json'), '{"running":true}\n');
    for (const line of tree(root)) log(`  ${line}`);
    log(`  cat etc/hostname → ${readFileSync(join(root, 'etc/hostname'), 'utf8').trim()}`);
    log(`  mounted at ${root}`);
    await driver.put('ctr');

    step('6. the store on disk (Docker\'s layout)');
    for (const id of await driver.list()) {
      const lower = await fsp.readFile(join(home, id, 'lower'), 'utf8').catch(() => '(base layer)');
      log(`  ${id}: link ${readFileSync(join(home, id, 'link'), 'utf8')}  lower ${lower}`);
    }
  } finally {
    step('cleanup');
    await driver.cleanup();
    for (const id of ['ctr', 'app', 'base']) if (await driver.exists(id)) await driver.remove(id);
    await removeTree(join(home, '..'));
    log('  unmounted, removed layers and the home');
  }
}
