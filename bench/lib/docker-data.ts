// The Docker benchmarks' data sets, generated once into bench/.data/docker: busybox-static roots as
// layer tars (bench/docker.ts imports them into both daemons; bench/plugin-apply.ts POSTs them).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fillSmallFiles, DATA } from './trees.js';
import { writeBusyboxRoot } from './dockerd.js';

export const DOCKER_DATA = join(DATA, 'docker');
const APPLETS = ['sh', 'cat', 'ls', 'rm', 'mkdir', 'echo', 'true', 'touch', 'seq', 'head'];
const MiB = 1 << 20;

export function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** A tar of a busybox root, optionally with `extra` dirs beneath it (as /NAME). */
export function rootfsTar(name: string, fill: (root: string) => void): string {
  fs.mkdirSync(DOCKER_DATA, { recursive: true });
  const tar = join(DOCKER_DATA, `${name}.tar`);
  if (fs.existsSync(`${tar}.complete`)) return tar;
  const root = join(DOCKER_DATA, `${name}-root`);
  fs.rmSync(root, { recursive: true, force: true });
  writeBusyboxRoot(root, APPLETS);
  fill(root);
  sh('tar', ['--numeric-owner', '-C', root, '-cf', tar, '.']);
  fs.rmSync(root, { recursive: true, force: true });
  fs.writeFileSync(`${tar}.complete`, '');
  return tar;
}

/** ~200 MB: 120 files of 1.5 MiB and 10k files of 1–4 KiB (Go toolchain-like mix). */
export function fillBig(root: string): void {
  const chunk = Buffer.alloc(1.5 * MiB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  fs.mkdirSync(join(root, 'opt', 'big'), { recursive: true });
  for (let n = 0; n < 120; n++) {
    chunk.writeUInt32LE(n, 0); // no two files alike
    fs.writeFileSync(join(root, 'opt', 'big', `blob${n}`), chunk);
  }
  const small = join(root, 'opt', 'small');
  fs.mkdirSync(small);
  fillSmallFiles(small, 777);
  // fillSmallFiles makes 50k; keep 10k (the first 20 dirs).
  for (const d of fs.readdirSync(small).slice(20)) fs.rmSync(join(small, d), { recursive: true });
}

/** A tar of `files` small files of 1–4 KiB (500 a directory; 50k by default), copied into a container
 *  with `docker cp -`. */
export function smallFilesTar(files = 50_000): string {
  fs.mkdirSync(DOCKER_DATA, { recursive: true });
  const tar = join(DOCKER_DATA, files === 50_000 ? 'small50k.tar' : `small${files}.tar`);
  if (fs.existsSync(`${tar}.complete`)) return tar;
  const dir = `${tar}.d`;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fillSmallFiles(dir, 4242);
  // fillSmallFiles makes 100 dirs of 500; keep the first files / 500.
  for (const d of fs.readdirSync(dir).sort().slice(Math.ceil(files / 500))) fs.rmSync(join(dir, d), { recursive: true });
  sh('tar', ['--numeric-owner', '-C', dir, '-cf', tar, '.']);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.writeFileSync(`${tar}.complete`, '');
  return tar;
}
