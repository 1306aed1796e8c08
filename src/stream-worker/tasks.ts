// What a stream worker (worker.ts) is started with: plain data, cloned into the thread.
import type { IdMap } from '../idmap.js';

export interface ApplyTask {
  task: 'apply';
  root: string;
  mode: 'layer' | 'mount';
  layer?: string;
  userxattr: boolean;
  uidMaps: IdMap[];
  gidMaps: IdMap[];
}

export interface ExportTask {
  task: 'export';
  upperDir: string;
  userxattr: boolean;
  uidMaps: IdMap[];
  gidMaps: IdMap[];
  xattrs: 'docker' | 'all';
}

export type StreamTask = ApplyTask | ExportTask;
