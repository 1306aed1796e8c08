// Issue #24 part 3, as dockerd meets it: the plugin (the installed bin, over its socket) answers
// another layer's calls while a Put's unmount is still syncing. The layer put holds 256 MiB of dirty
// data, so the overlay's shutdown — which syncs the upper filesystem — takes a while. Once its mount
// has left /proc/self/mountinfo (the detach is done, the sync is what remains), Exists calls for
// another layer go out one after another: at least one must be answered before the Put is. When the
// unmount ran on the event loop, the detach and the sync were one umount2 call, and nothing else was
// answered until it returned. An ordering, not a time limit: it holds on a loaded machine too.
import { test as uvuTest } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { mountTest, scratchRoot, isMounted } from './support/env.js';
import { graphDriverCall, pluginCall, startPluginProcess, type PluginProcess } from './support/plugin-client.js';

const test = mountTest(uvuTest);
let scratch: ReturnType<typeof scratchRoot>;
let plugin: PluginProcess;
let home = '';

const call = (method: string, body: object) => graphDriverCall(plugin.socket, method, body);

test.before(async () => {
  scratch = scratchRoot('ovl2-services-load-');
  home = join(scratch.root, 'home');
  plugin = await startPluginProcess(home, join(scratch.root, 'p.sock'));
  await call('Create', { ID: 'base', Parent: '' });
  await call('CreateReadWrite', { ID: 'other', Parent: 'base' });
  await call('Get', { ID: 'other' });
});
test.after(async () => {
  await plugin?.stop();
  scratch?.remove();
});

const CHUNK = Buffer.alloc(8 << 20, 0x6b);

async function dirty(dir: string, mib: number): Promise<void> {
  const fh = await open(join(dir, 'dirty'), 'w');
  try {
    for (let n = 0; n < mib; n += 8) await fh.write(CHUNK);
  } finally {
    await fh.close();
  }
}

test('another layer\'s Exists is answered while a Put\'s unmount syncs 256 MiB', async () => {
  // A few tries: the one thing that can make a try say nothing is a sync that ends before the first
  // Exists gets there (then the Put is answered first whichever way the unmount runs).
  const tries: string[] = [];
  for (let t = 0; t < 3; t++) {
    const id = `dirty-${t}`;
    await call('CreateReadWrite', { ID: id, Parent: 'base' });
    const merged = (await call('Get', { ID: id })).Dir as string;
    await dirty(merged, 256);
    let putAnswered = false;
    const put = call('Put', { ID: id }).then(() => { putAnswered = true; });
    // the detach is done: what is left of the unmount is the superblock's shutdown and its sync
    while (isMounted(merged) && !putAnswered) await new Promise((r) => setImmediate(r));
    let before = 0, after = 0;
    while (!putAnswered) {
      const e = await call('Exists', { ID: 'other' });
      assert.is(e.Exists, true);
      if (putAnswered) after++;
      else before++;
    }
    await put;
    assert.not.ok(isMounted(merged), 'the layer put is unmounted');
    await call('Remove', { ID: id });
    tries.push(`${before} Exists answered before the Put, ${after} after`);
    if (before > 0) break;
  }
  console.error(`services-load: ${tries.join('; ')}`);
  assert.ok(/^[1-9]/.test(tries[tries.length - 1]!), `an Exists of another layer was answered while the Put was unmounting (${tries.join('; ')})`);
});

test('the layer put is usable again at once: Get after Put mounts it afresh with its data', async () => {
  await call('CreateReadWrite', { ID: 'again', Parent: 'base' });
  const merged = (await call('Get', { ID: 'again' })).Dir as string;
  await dirty(merged, 16);
  await call('Put', { ID: 'again' });
  const again = (await call('Get', { ID: 'again' })).Dir as string;
  assert.ok(isMounted(again));
  const fh = await open(join(again, 'dirty'));
  try {
    assert.is((await fh.stat()).size, 16 << 20, 'what was written before the Put is there');
  } finally {
    await fh.close();
  }
  await call('Put', { ID: 'again' });
  await call('Remove', { ID: 'again' });
});

test.run();
