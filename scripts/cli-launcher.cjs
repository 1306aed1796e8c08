#!/usr/bin/env node
// The overlay2 bin (copied to dist/cli/overlay2.cjs by scripts/bundle-cli.mjs): runs the bundled CLI,
// dist/cli/bundle.cjs, compiled with the V8 code cache made at build time beside it — Node 20 has no
// module.enableCompileCache, and parsing the bundle was a third of what a call cost above Node's own
// start. A missing or rejected cache (another Node version) only means a normal compile.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');
const { createRequire } = require('node:module');

/** The CommonJS module wrapper, the same at build time (making the cache) and here (using it). */
function wrap(source) {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

function run() {
  const file = join(__dirname, 'bundle.cjs');
  let cachedData;
  try { cachedData = readFileSync(`${file}.cache`); } catch { /* no cache: compile */ }
  const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  const mod = { exports: {}, filename: file };
  script.runInThisContext()(mod.exports, createRequire(file), mod, file, __dirname);
}

if (require.main === module) run();
else module.exports = { wrap };
