// What image load and save need of the driver: the layer calls, as an interface of their own so
// that src/image/ does not import the driver that dispatches to it (Overlay2Driver satisfies it).
import type { Readable } from 'node:stream';
import type { Control } from '../progress.js';
import type { LayerSource } from '../apply/input.js';

export interface LayerDriver {
  readonly home: string;
  exists(id: string): Promise<boolean>;
  create(id: string, parent?: string | null): Promise<void>;
  remove(id: string): Promise<void>;
  parentOf(id: string): Promise<string>;
  layerDir(id: string): string;
  applyDiff(id: string, parent: string | null | undefined, tar: LayerSource, opts: Control & { expectDiffId?: string }): Promise<number>;
  diff(id: string, parent: string | null | undefined, opts: Control): Promise<Readable>;
}
