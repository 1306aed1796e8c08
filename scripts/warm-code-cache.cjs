// Makes the CLI's V8 code cache after a real call instead of before one (run by scripts/bundle-cli.mjs
// in a child process): `overlay2 exists` on a scratch home, then the cache is taken at exit. V8 then
// includes every function that call compiled (driver init, the store, the shim loader), not only the
// bundle's top level, so the bin does not compile them again at every call.
//   node scripts/warm-code-cache.cjs BUNDLE CACHE_OUT HOME
// HOME must already hold a layer named "warm" (bundle-cli.mjs makes it through the bin).
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { Script } = require('node:vm');
const { createRequire } = require('node:module');
const { wrap } = require('./cli-launcher.cjs');

const [bundle, out, home] = process.argv.slice(2);
const script = new Script(wrap(readFileSync(bundle, 'utf8')), { filename: bundle });
process.argv = [process.argv[0], bundle, '--home', home, 'exists', 'warm'];
process.on('exit', (code) => {
  if (code === 0) writeFileSync(out, script.createCachedData());
});
const mod = { exports: {}, filename: bundle };
script.runInThisContext()(mod.exports, createRequire(bundle), mod, bundle, require('node:path').dirname(bundle));
