// The package as the README's Install section has a user install it today: `npm pack` in this
// checkout (its prebuilt shim staged first, as npm pack's prepack does), then `npm install
// <tarball>` in an empty ESM project (offline from the npm cache when it can, the registry otherwise).
import * as assert from 'uvu/assert';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Packed {
  /** the consumer project, with overlay2 installed from the tarball */
  project: string;
  tarball: string;
}

export function sh(cmd: string, args: string[], opts: SpawnSyncOptions & { cwd: string }) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  return { code: r.status, out: String(r.stdout ?? ''), err: String(r.stderr ?? '') };
}

/** Packs this checkout into `packDir` and installs the tarball into a new project under `projectParent`. */
export function packAndInstall(packDir: string, projectParent: string): Packed {
  const root = process.cwd();
  const staged = sh(process.execPath, [join(root, 'scripts', 'prebuilt.mjs')], { cwd: root });
  assert.is(staged.code, 0, staged.err);
  const packed = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: root });
  assert.is(packed.code, 0, packed.err);
  const tarball = join(packDir, (JSON.parse(packed.out) as { filename: string }[])[0]!.filename);
  const project = join(projectParent, 'consumer');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const flags = ['install', '--no-audit', '--no-fund', '--loglevel=error', tarball];
  let installed = sh('npm', [...flags, '--offline'], { cwd: project });
  if (installed.code !== 0) installed = sh('npm', [...flags, '--prefer-offline'], { cwd: project }); // a cold cache: the registry
  assert.is(installed.code, 0, installed.err);
  return { project, tarball };
}
