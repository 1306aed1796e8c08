// applyDiff of a thin layer. A tar applied to an empty layer that holds exactly one regular file,
// thin.json (or .thin), and nothing but its root directory besides, makes the layer thin: the
// manifest is checked before the extracted tree is swapped in (a bad one leaves the layer as it
// was), then each listed tree gets a link l/<link id> and the layer's lower becomes those links (top
// first) followed by the parent chain it had. Any other tar is an ordinary layer.
//
// Crash safety: the plan (link ids and targets, the lower it replaces) is written to
// HOME/<id>/.thin-pending before the swap; the swap, the links and the new lower follow; the marker
// goes last. An init that finds the marker either finishes the plan (the manifest is in diff/) or
// drops it (it is not), so no thin layer is ever seen with its manifest but without its lowers.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Overlay2Error, isErrno } from '../errors.js';
import type { ApplyTap } from '../apply/tap.js';
import type { TarEntry, TarSink } from '../tar/reader.js';
import { generateLinkId, validateLowerEntry } from '../layout/ids.js';
import { MANIFEST_MAX_BYTES, MANIFEST_NAMES, checkManifestSize, parseManifest, type ManifestName, type ThinManifest } from './manifest.js';
import { manifestFileOf, readLowerSync } from './layer-files.js';
import { thinLinkTarget } from './links.js';
import { writeDurably } from '../util/durable-write.js';

export const THIN_PENDING_FILE = '.thin-pending';

interface Plan {
  /** l/<link id> -> target, the manifest's trees top first */
  links: Array<{ linkId: string; target: string }>;
  /** the lower the layer had (its parent chain), kept below the links */
  parentLower: string[];
}

export interface ThinApplyContext {
  home: string;
  root: string;
  id: string;
  maxDepth: number;
}

/** Wraps applyDiff's tap: watches the entries go by, keeps the manifest's bytes, and at the end of
 *  the archive (before the swap) validates it and writes the plan. */
export class ThinApply implements ApplyTap {
  manifest: ThinManifest | null = null;
  private name: ManifestName | null = null;
  private files = 0;
  private other = false;
  private bytes: Buffer[] = [];
  private kept = 0;
  private declaredSize = 0;
  private capturing = false;

  constructor(private readonly inner: ApplyTap, private readonly ctx: ThinApplyContext) {}

  private get layerDir(): string { return join(this.ctx.home, this.ctx.id); }

  wrap(sink: TarSink): TarSink {
    const inner = this.inner.wrap(sink);
    return {
      entry: (e: TarEntry) => {
        this.see(e);
        inner.entry(e);
      },
      data: (buf, start, end) => {
        if (this.capturing && this.kept <= MANIFEST_MAX_BYTES) {
          const take = Math.min(end - start, MANIFEST_MAX_BYTES + 1 - this.kept);
          this.bytes.push(Buffer.from(buf.subarray(start, start + take)));
          this.kept += take;
        }
        inner.data(buf, start, end);
      },
      end: () => inner.end(),
    };
  }

  private see(e: TarEntry): void {
    this.capturing = false;
    if (this.other) return;
    const name = e.name.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
    if (name === '' || name === '.') {
      if (e.kind !== 'dir') this.other = true;
      return;
    }
    if (e.kind === 'file' && this.files === 0 && (MANIFEST_NAMES as readonly string[]).includes(name)) {
      this.files = 1;
      this.name = name as ManifestName;
      this.declaredSize = e.size;
      this.capturing = true;
      return;
    }
    this.other = true;
  }

  before(chunk: Buffer): void { this.inner.before(chunk); }
  after(chunk: Buffer): void { this.inner.after(chunk); }
  input(bytes: number): void { this.inner.input(bytes); }

  finish(): void {
    this.inner.finish();
    if (this.other || this.name === null) return;
    const where = `of layer ${this.ctx.id}`;
    checkManifestSize(this.declaredSize, where);
    const manifest = parseManifest(Buffer.concat(this.bytes), this.name, where);
    const parentLower = readLowerSync(this.layerDir);
    const depth = manifest.layers.length + parentLower.length;
    if (depth > this.ctx.maxDepth) {
      throw new Overlay2Error('ERR_MAX_DEPTH',
        `overlay2: max depth exceeded: thin layer ${this.ctx.id} would have ${depth} lower layers (${manifest.layers.length} listed, ${parentLower.length} below; limit ${this.ctx.maxDepth})`, { id: this.ctx.id });
    }
    const plan: Plan = {
      links: [...manifest.layers].reverse().map((l) => ({ linkId: generateLinkId(), target: thinLinkTarget(this.ctx.home, this.ctx.root, l) })),
      parentLower,
    };
    writeDurably(join(this.layerDir, THIN_PENDING_FILE), JSON.stringify(plan));
    this.manifest = manifest;
  }

  /** After the swap: makes the links and the lower, then drops the marker. */
  complete(): void {
    if (this.manifest) completePlan(this.ctx.home, this.layerDir);
  }

  /** The apply failed: nothing of the plan may stay. */
  abandon(): void {
    fs.rmSync(join(this.layerDir, THIN_PENDING_FILE), { force: true });
  }
}

/** Carries out a written plan (idempotent: a link already there with the same target is kept). */
function completePlan(home: string, layerDir: string): void {
  const marker = join(layerDir, THIN_PENDING_FILE);
  const plan = JSON.parse(fs.readFileSync(marker, 'utf8')) as Plan;
  const entries: string[] = [];
  for (const { linkId, target } of plan.links) {
    const entry = `l/${linkId}`;
    validateLowerEntry(entry, layerDir);
    const path = join(home, entry);
    try {
      fs.symlinkSync(target, path);
    } catch (e) {
      if (!isErrno(e, 'EEXIST') || fs.readlinkSync(path) !== target) throw e;
    }
    entries.push(entry);
  }
  const lower = [...entries, ...plan.parentLower].join(':');
  const tmp = join(layerDir, `lower.tmp-${process.pid}`);
  fs.writeFileSync(tmp, lower, { mode: 0o666 });
  fs.renameSync(tmp, join(layerDir, 'lower'));
  fs.rmSync(marker, { force: true });
}

/** At init: a plan an interrupted apply left is finished when the manifest made it into diff/, else dropped. */
export function recoverThinApply(home: string, layerDir: string): void {
  let plan: Plan;
  try {
    plan = JSON.parse(fs.readFileSync(join(layerDir, THIN_PENDING_FILE), 'utf8')) as Plan;
  } catch {
    fs.rmSync(join(layerDir, THIN_PENDING_FILE), { force: true });
    return;
  }
  if (manifestFileOf(layerDir) === null || !Array.isArray(plan.links)) {
    fs.rmSync(join(layerDir, THIN_PENDING_FILE), { force: true });
    return;
  }
  completePlan(home, layerDir);
}
