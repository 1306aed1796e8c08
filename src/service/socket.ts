// A service's unix socket (the graphdriver plugin's HTTP, the snapshotter's gRPC): claimed without
// stealing it from a live instance, replaced when a killed run left it behind, created 0600 from the
// first moment, and removed on close only if still ours.
import { promises as fsp } from 'node:fs';
import { connect, type Server } from 'node:net';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Overlay2Error, isErrno } from '../errors.js';

/** sun_path is 108 bytes with its NUL. */
const MAX_SOCKET_PATH = 107;
const PROBE_TIMEOUT_MS = 2000;

/** What is at a socket path: nothing, a socket nobody listens on (a killed run's), or a live server. */
export async function probeSocket(path: string, who = 'overlay2 plugin'): Promise<'absent' | 'stale' | 'live'> {
  let st;
  try {
    st = await fsp.lstat(path);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return 'absent';
    throw e;
  }
  if (!st.isSocket()) {
    throw new Overlay2Error('ERR_BAD_OPTION', `${who}: ${path} exists and is not a socket; refusing to replace it`, { path, option: 'socket' });
  }
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => { s.destroy(); resolve('live'); }, PROBE_TIMEOUT_MS);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve('live'); });
    s.once('error', (e) => {
      clearTimeout(timer);
      if (isErrno(e, 'ECONNREFUSED')) resolve('stale');
      else if (isErrno(e, 'ENOENT')) resolve('absent');
      else reject(e);
    });
  });
}

/** How a server takes a socket path: listen on it, and stop listening (when the claim fails). */
export interface SocketBinder {
  /** who is speaking in error messages ("overlay2 plugin") */
  who: string;
  /** what to say about stopping the other instance when the socket is taken */
  inUseHint: string;
  listen(path: string): Promise<void>;
  close(): Promise<void>;
}

/** listenOnSocket for a node:net (or node:http) server. */
export function netBinder(server: Server, who = 'overlay2 plugin', inUseHint = 'or choose another --name/--socket'): SocketBinder {
  return {
    who,
    inUseHint,
    listen: (path) => new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => { server.off('error', reject); resolve(); });
    }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Listens on `path`: refuses (ERR_SOCKET_IN_USE) when another process answers there, replaces a
 * stale socket. The server binds a private temporary name first, is made 0600, and is then
 * hard-linked to `path` (link(2) fails if someone got there first, so two instances starting at once
 * cannot both believe they own it). Returns the socket's inode, for release().
 */
export async function listenOnSocket(server: Server | SocketBinder, path: string, dirMode = 0o755): Promise<number> {
  const binder = 'listen' in server && 'who' in server ? server : netBinder(server as Server);
  const { who } = binder;
  if (!isAbsolute(path)) {
    throw new Overlay2Error('ERR_BAD_OPTION', `${who}: socket path must be absolute, got ${JSON.stringify(path)}`, { option: 'socket' });
  }
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}`);
  if (Buffer.byteLength(temp) > MAX_SOCKET_PATH) {
    throw new Overlay2Error('ERR_BAD_OPTION', `${who}: socket path ${path} is too long for a unix socket (${MAX_SOCKET_PATH - 20} bytes at most)`, { path, option: 'socket' });
  }
  await fsp.mkdir(dir, { recursive: true, mode: dirMode });
  if ((await probeSocket(path, who)) === 'live') throw inUse(binder, path);

  // umask 0177 while binding: the socket is never connectable by others, not even for a moment.
  const oldMask = process.umask(0o177);
  try {
    await binder.listen(temp);
  } finally {
    process.umask(oldMask);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      const state = await probeSocket(path, who);
      if (state === 'live') throw inUse(binder, path);
      if (state === 'stale') await fsp.rm(path, { force: true });
      try {
        await fsp.link(temp, path);
        break;
      } catch (e) {
        // Another instance linked its socket between our probe and our link: probe again.
        if (!isErrno(e, 'EEXIST') || attempt >= 3) throw e;
      }
    }
    return (await fsp.lstat(path)).ino;
  } catch (e) {
    await binder.close();
    throw e;
  } finally {
    await fsp.rm(temp, { force: true });
  }
}

/** Removes the socket at `path` if it is still the one we created (a newer instance may own it now). */
export async function releaseSocket(path: string, ino: number): Promise<void> {
  try {
    if ((await fsp.lstat(path)).ino === ino) await fsp.rm(path, { force: true });
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
  }
}

function inUse(binder: SocketBinder, path: string): Overlay2Error {
  return new Overlay2Error('ERR_SOCKET_IN_USE',
    `${binder.who}: another process is serving ${path}; stop it first (${binder.inUseHint})`, { path, option: 'socket' });
}
