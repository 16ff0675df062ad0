'use strict';
// File writing shared by jsii-preload.cjs and jsii-validation-worker.cjs (a worker thread runs
// without the preload): what they cache is written whole or not at all.
const fs = require('fs');
const path = require('path');

// `data` to `file` through a temporary file and a rename, so a reader (another process too)
// sees the old file or the new one, never part of one. A failure (a full disk) costs the cache
// entry, never the synth.
function writeWhole(file, data) {
  const partial = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(partial, data, { mode: 0o600 });
    fs.renameSync(partial, file);
    return true;
  } catch {
    fs.rmSync(partial, { force: true });
    return false;
  }
}

// Deletes the files of `dir` whose names start with `prefix` and that were last written (or
// touched) more than `ms` ago: cache entries nothing uses any more.
function pruneUnused(dir, prefix, ms) {
  let names = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return; // the folder went away: nothing to prune
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const file = path.join(dir, name);
    try {
      if (Date.now() - fs.statSync(file).mtimeMs > ms) fs.rmSync(file, { force: true });
    } catch {
      // gone already (another process pruned it)
    }
  }
}

module.exports = { pruneUnused, writeWhole };
