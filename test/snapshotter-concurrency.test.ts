// What containerd's GC does to everyone else: it removes big layers (an image of thousands of files)
// while pulls and container starts go on. containerd's own overlayfs snapshotter deletes the directories
// after its metadata transaction has committed (snapshots/overlay/overlay.go, Remove: "Remove directories
// after the transaction is closed"), so other calls never wait for a deletion. Ours is called the way
// containerd calls it (gRPC on the socket of `overlay2 snapshotter`, the CLI as a user runs it).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchRoot } from './support/env.js';
import { SnapshotsClient, startSnapshotter, type RunningSnapshotter } from './support/snapshots-client.js';

let scratch: ReturnType<typeof scratchRoot>;
let snap: RunningSnapshotter;
let client: SnapshotsClient;

test.before(async () => {
  scratch = scratchRoot('ovl2-snapconc-');
  const socket = join(scratch.root, 's.sock');
  snap = await startSnapshotter(join(scratch.root, 'home'), socket);
  client = new SnapshotsClient(socket);
});

test.after(async () => {
  client?.close();
  await snap?.stop();
  scratch?.remove();
});

test('a Prepare while a 5,000-file snapshot is removed does not wait for the deletion', async () => {
  // A committed layer of 50 × 100 files (a base snapshot: its mount is a bind of its own upper dir).
  const [m] = await client.prepare('big-active');
  for (let i = 0; i < 50; i++) {
    mkdirSync(join(m!.source, `d${i}`));
    for (let j = 0; j < 100; j++) writeFileSync(join(m!.source, `d${i}`, `f${j}`), `${i}.${j}\n`);
  }
  await client.commit('big', 'big-active');
  await client.prepare('small-active');
  await client.commit('small', 'small-active');
  const alone = await timed(() => client.prepare('alone', 'small'));

  const started = performance.now();
  const removal = client.remove('big').then(() => performance.now() - started);
  await new Promise((r) => setTimeout(r, 5));
  const during = await timed(() => client.prepare('during', 'small'));
  const removeMs = await removal;
  // Only meaningful when the removal itself takes a while (a slow disk: ~1-3 s here).
  assert.ok(removeMs > 50, `the removal took ${removeMs.toFixed(0)} ms: too fast to show anything`);
  assert.ok(during < removeMs / 2,
    `Prepare took ${during.toFixed(0)} ms while Remove of the 5,000-file snapshot took ${removeMs.toFixed(0)} ms (a Prepare alone: ${alone.toFixed(0)} ms)`);
});

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

test.run();
