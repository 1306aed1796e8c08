#!/usr/bin/env node
// The overlay2 bin (copied to dist/cli/overlay2.cjs by scripts/bundle-cli.mjs): runs the bundled CLI,
// dist/cli/bundle.cjs, compiled with the V8 code cache beside it — Node 20 has no
// module.enableCompileCache, and parsing the bundle was a third of what a call cost above Node's own
// start. A missing or rejected cache (another Node version) only means a normal compile.
// The cache is made where the bundle runs, never shipped: V8 keeps the file name a script was
// compiled under in its cache, and a script compiled from a cache reports that name in its stack
// traces, so a cache made on the packing machine would point every installed package's traces at
// the packer's checkout. The build makes one for the checkout (scripts/bundle-cli.mjs); the package
// leaves it out (package.json "files"), and the first call of an installed bin that finds none (or
// one V8 rejects) writes it at exit, under the installed path, when it may write there.
'use strict';
const { readFileSync, writeFileSync, renameSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');
const { createRequire } = require('node:module');

/** The CommonJS module wrapper, the same at build time (making the cache) and here (using it). */
function wrap(source) {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

function run() {
  const file = join(__dirname, 'bundle.cjs');
  const cacheFile = `${file}.cache`;
  let cachedData;
  try { cachedData = readFileSync(cacheFile); } catch { /* no cache: compile */ }
  const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    // at exit, so the cache also holds the functions this call compiled, not only the top level
    process.once('exit', () => {
      const tmp = `${cacheFile}.tmp-${process.pid}`;
      try {
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        try { rmSync(tmp, { force: true }); } catch { /* a read-only install: every call compiles */ }
      }
    });
  }
  const mod = { exports: {}, filename: file };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, __dirname);
}

if (require.main === module) run();
else module.exports = { wrap };
