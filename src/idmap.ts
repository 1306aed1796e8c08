// uid/gid maps between the host and a user-namespaced container (Docker's --userns-remap):
// files on disk carry host ids, tar archives carry container ids.
import { Overlay2Error } from './errors.js';

export interface IdMap {
  containerId: number;
  hostId: number;
  size: number;
}

export interface IdMapOptions {
  uidMaps?: IdMap[];
  gidMaps?: IdMap[];
}

function checkMaps(maps: IdMap[], kind: string): IdMap[] {
  for (const m of maps) {
    const ok = [m.containerId, m.hostId, m.size].every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff);
    if (!ok || m.size === 0) {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: invalid ${kind} map ${JSON.stringify(m)}`, { option: kind });
    }
  }
  return maps.map((m) => ({ ...m }));
}

function translate(id: number, maps: IdMap[], from: 'containerId' | 'hostId', to: 'containerId' | 'hostId'): number | null {
  if (maps.length === 0) return id;
  for (const m of maps) {
    if (id >= m[from] && id < m[from] + m.size) return m[to] + (id - m[from]);
  }
  return null;
}

export class IdMappings {
  readonly uidMaps: readonly IdMap[];
  readonly gidMaps: readonly IdMap[];

  constructor(opts: IdMapOptions = {}) {
    this.uidMaps = checkMaps(opts.uidMaps ?? [], 'uid');
    this.gidMaps = checkMaps(opts.gidMaps ?? [], 'gid');
  }

  get empty(): boolean {
    return this.uidMaps.length === 0 && this.gidMaps.length === 0;
  }

  /** Host ids for ids found in an archive; throws when an id has no mapping. */
  toHost(uid: number, gid: number): { uid: number; gid: number } {
    const u = translate(uid, this.uidMaps as IdMap[], 'containerId', 'hostId');
    const g = translate(gid, this.gidMaps as IdMap[], 'containerId', 'hostId');
    if (u === null || g === null) {
      throw new Overlay2Error('ERR_BAD_ARCHIVE', `overlay2: container id ${u === null ? `uid ${uid}` : `gid ${gid}`} has no host mapping`);
    }
    return { uid: u, gid: g };
  }

  /** Container ids for ids found on disk; throws when an id has no mapping. */
  toContainer(uid: number, gid: number): { uid: number; gid: number } {
    const u = translate(uid, this.uidMaps as IdMap[], 'hostId', 'containerId');
    const g = translate(gid, this.gidMaps as IdMap[], 'hostId', 'containerId');
    if (u === null || g === null) {
      throw new Overlay2Error('ERR_BAD_OPTION', `overlay2: host id ${u === null ? `uid ${uid}` : `gid ${gid}`} has no container mapping`);
    }
    return { uid: u, gid: g };
  }

  /** The host ids of the container's root (0:0), which owns the layer directories. */
  root(): { uid: number; gid: number } {
    return this.toHost(0, 0);
  }
}
