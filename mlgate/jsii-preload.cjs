'use strict';
// Loaded by mlgate/jsii-node (`node -r`) before jsii's kernel, lib/program.js, which then runs
// in the one node process Python talks to. mlgate/jsii_node.py says why; each part below says
// what jsii's relay (bin/jsii-runtime.js) did that this process now does itself.
const crypto = require('crypto');
const fs = require('fs');
const Module = require('module');
const os = require('os');
const path = require('path');
const vm = require('vm');

// 1. The kernel reads requests from fd 3 and writes its answers to fd 3: under the relay, one
//    socket. Here fd 3 is Python's request pipe (read end, set up by jsii-node) and fd 4 its
//    response pipe, so the kernel's writes to fd 3 go to fd 4. No other file can be opened as
//    fd 3 while this process holds it.
const writeSync = fs.writeSync;
fs.writeSync = function writeSyncToPython(fd, ...rest) {
  return writeSync.call(this, fd === 3 ? 4 : fd, ...rest);
};

// 2. Console output. The relay sent each chunk the kernel wrote to stdout or stderr to Python as
//    a JSON line {"stdout"|"stderr": base64} on its stderr, which jsii's Python side decodes
//    onto sys.stdout and sys.stderr. Both of this process's streams are that stderr pipe now
//    (jsii-node points fd 1 at it), so the same lines go out the same way.
const writeStderr = process.stderr.write.bind(process.stderr);
function relayAs(key) {
  return function write(chunk, encoding, callback) {
    if (typeof encoding === 'function') {
      callback = encoding;
      encoding = undefined;
    }
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), encoding);
    return writeStderr(`${JSON.stringify({ [key]: bytes.toString('base64') })}\n`, callback);
  };
}
process.stdout.write = relayAs('stdout');
process.stderr.write = relayAs('stderr');

// 3. A V8 code cache for the JavaScript the kernel loads: aws-cdk-lib, cdk-nag and their
//    dependencies, about 850 files and 25 MB per synth, compiled again by every process. Node's
//    own compile cache (NODE_COMPILE_CACHE) keys entries by file path, and jsii loads each
//    package from a new temporary folder every time, so it never hits; this cache keys them by
//    content (SHA-256), and V8 rejects an entry made by another V8 version or with other flags
//    (`cachedDataRejected`), which is then made again. Entries are written at exit, after the
//    run, so they hold the functions V8 compiled lazily too.
//    MLGATE_JSII_CODE_CACHE=off turns it off; MLGATE_JSII_CODE_CACHE=DIR puts it in DIR.
function privateCacheDir() {
  const setting = process.env.MLGATE_JSII_CODE_CACHE;
  if (setting === 'off') return undefined;
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const root = setting || path.join(cacheHome, 'mlgate', 'jsii-code-cache');
  const dir = path.join(root, `${process.version}-${process.arch}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Cached code runs as this user: like jsii's own package cache, use only a folder no other
    // user can write to.
    for (const folder of [root, dir]) {
      const stat = fs.statSync(folder);
      if (stat.uid !== process.getuid() || (stat.mode & 0o022) !== 0) {
        throw new Error(`${folder} is not private to this user (owner or mode)`);
      }
    }
    return dir;
  } catch (err) {
    process.stderr.write(`mlgate: jsii code cache off: ${err.message}\n`);
    return undefined;
  }
}

const cacheDir = privateCacheDir(); // mlgate/jsii-node, a POSIX shell script, loads this file
if (cacheDir !== undefined) {
  const compile = Module.prototype._compile;
  const wrapperStart = Module.wrapper[0];
  const toWrite = [];

  Module.prototype._compile = function compileWithCodeCache(content, filename, format) {
    if ((format !== undefined && format !== 'commonjs') || !filename.endsWith('.js')) {
      return compile.call(this, content, filename, format);
    }
    const entry = path.join(cacheDir, crypto.createHash('sha256').update(content).digest('hex'));
    let cachedData;
    try {
      cachedData = fs.readFileSync(entry);
    } catch {
      cachedData = undefined;
    }
    let script;
    try {
      script = new vm.Script(Module.wrap(content), {
        filename,
        // positions on the first line as node's own loader reports them (no wrapper text)
        columnOffset: -wrapperStart.length,
        cachedData,
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      });
    } catch {
      // not plain CommonJS (a syntax error, ES module syntax): node's loader decides and reports
      return compile.call(this, content, filename, format);
    }
    if (cachedData === undefined || script.cachedDataRejected) toWrite.push([entry, script]);
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(
      this.exports, this.exports, requireFor(this), this, filename, path.dirname(filename),
    );
  };

  process.once('exit', () => {
    for (const [entry, script] of toWrite) {
      const partial = `${entry}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(partial, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(partial, entry); // whole or not at all, also with several processes
      } catch {
        fs.rmSync(partial, { force: true }); // a full disk costs the cache, never the synth
      }
    }
  });
}

// The `require` node gives each CommonJS module (lib/internal/modules/helpers.js).
function requireFor(mod) {
  const require = function require(id) {
    return mod.require(id);
  };
  require.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
  require.resolve.paths = (request) => Module._resolveLookupPaths(request, mod);
  Object.defineProperty(require, 'main', { get: () => process.mainModule, enumerable: true });
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}
