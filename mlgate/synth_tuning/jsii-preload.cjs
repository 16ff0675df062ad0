'use strict';
// Loaded by mlgate/synth_tuning/jsii-node (`node -r`) before jsii's kernel, lib/program.js, which then runs
// in the one node process Python talks to. mlgate/synth_tuning/jsii_node.py says why; each part below says
// what jsii's relay (bin/jsii-runtime.js) did that this process now does itself.
const crypto = require('crypto');
const fs = require('fs');
const Module = require('module');
const os = require('os');
const path = require('path');
const vm = require('vm');

const { pruneUnused, writeWhole } = require('./jsii-files.cjs');

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
function privateCacheDir(variable, name, sub) {
  const setting = process.env[variable];
  if (setting === 'off') return undefined;
  const cacheHome = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const root = setting || path.join(cacheHome, 'mlgate', name);
  const dir = path.join(root, sub);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // What is cached is run or believed as this user: like jsii's own package cache, use only
    // a folder no other user can write to.
    for (const folder of [root, dir]) {
      const stat = fs.statSync(folder);
      if (stat.uid !== process.getuid() || (stat.mode & 0o022) !== 0) {
        throw new Error(`${folder} is not private to this user (owner or mode)`);
      }
    }
    return dir;
  } catch (err) {
    process.stderr.write(`mlgate: ${name} off: ${err.message}\n`);
    return undefined;
  }
}

// mlgate/synth_tuning/jsii-node, a POSIX shell script, loads this file
const cacheDir = privateCacheDir(
  'MLGATE_JSII_CODE_CACHE', 'jsii-code-cache', `${process.version}-${process.arch}`,
);
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
    for (const [entry, script] of toWrite) writeWhole(entry, script.createCachedData());
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

// The kernel reads each request from fd 3 (fs.readSync). Parts 4 and 5 start at the first
// request for a `cdk.App`: in a program that builds an app, not in one that only imports CDK.
const APP_REQUESTS = ['"fqn": "aws-cdk-lib.App"', '"fqn":"aws-cdk-lib.App"'];
const onApp = []; // run once the kernel has read that request
const onNextWait = []; // run when the kernel next waits for a request, its answer written
let appSeen = false;
const readSync = fs.readSync;
fs.readSync = function readSyncWatching(fd, buffer, offset, ...rest) {
  if (fd === 3 && onNextWait.length > 0) {
    for (const run of onNextWait.splice(0)) run();
  }
  const count = readSync.call(this, fd, buffer, offset, ...rest);
  if (fd === 3 && !appSeen && count > 0) {
    const start = typeof offset === 'number' ? offset : 0;
    const read = buffer.subarray(start, start + count);
    if (APP_REQUESTS.some((request) => read.includes(request))) {
      appSeen = true;
      for (const run of onApp.splice(0)) run();
    }
  }
  return count;
};

// Where jsii put aws-cdk-lib, `<jsii's folder>/node_modules/aws-cdk-lib/`: known from the
// kernel's own require of it (an absolute path), before any `cdk.App()`.
const CDK_LIB = `${path.sep}aws-cdk-lib${path.sep}`;
let cdkRoot;
const loadNoting = Module._load;
Module._load = function loadNotingCdkLib(request, parent, isMain) {
  if (cdkRoot === undefined) {
    const from = parent && parent.filename;
    const hit = [request, from].find((p) => typeof p === 'string' && path.isAbsolute(p)
      && p.includes(CDK_LIB));
    if (hit !== undefined) cdkRoot = hit.slice(0, hit.indexOf(CDK_LIB) + CDK_LIB.length);
  }
  return loadNoting.call(this, request, parent, isMain);
};

// 4. CDK's CloudFormation validation engine on a worker thread. aws-cdk-lib's
//    CloudFormationValidatePlugin builds @aws/cloudformation-validate's engine (WebAssembly) on
//    node's main thread: 1.4 s in which no jsii call is answered, then about 0.07 s a template.
//    Here a worker thread starts building it at the first `cdk.App()`, on the core Python
//    leaves idle while it waits for node; the plugin gets a stand-in module whose engine
//    forwards each call to the worker and waits for its answer (Atomics.wait): the same engine,
//    config, templates and options, so the same report, and the same errors, thrown where the
//    engine throws them. The engine built ahead has the plugin's default config and is only
//    handed to an engine asked for with that config (compared as JSON); another config gets its
//    own engine, built when asked for. CDK_VALIDATION=false (nothing is validated) or
//    MLGATE_VALIDATION_WORKER=off: no worker, and the plugin loads the module itself.
const VALIDATE = '@aws/cloudformation-validate';
let engineHost; // undefined: not started yet; null: no worker

if (process.env.CDK_VALIDATION !== 'false' && process.env.MLGATE_VALIDATION_WORKER !== 'off') {
  const host = () => {
    if (engineHost === undefined && cdkRoot !== undefined) engineHost = startEngineHost(cdkRoot);
    return engineHost;
  };
  onApp.push(host);
  const load = Module._load;
  Module._load = function loadWithValidationWorker(request, parent, isMain) {
    const from = parent && parent.filename;
    if (request === VALIDATE && typeof from === 'string' && cdkRoot !== undefined
        && from.startsWith(cdkRoot) && host()) {
      return engineHost.module(() => load.call(this, request, parent, isMain));
    }
    return load.call(this, request, parent, isMain);
  };
}

// The config CloudFormationValidatePlugin gives its engine when constructed without props
// (core/lib/validation/cloudformation-validate-plugin.js, defaultRegoRules).
function defaultValidationConfig(root) {
  const rulesDir = path.join(root, 'core', 'lib', 'validation', 'rules');
  const regoRules = fs
    .readdirSync(rulesDir)
    .filter((f) => f.endsWith('.rego'))
    .sort()
    .map((f) => ({ name: f, content: fs.readFileSync(path.join(rulesDir, f), 'utf-8') }));
  return regoRules.length > 0 ? { regoRules } : {};
}

function startEngineHost(root) {
  let worker;
  try {
    // as aws-cdk-lib's own modules resolve it: from its folder's node_modules
    const modulePath = Module._resolveFilename(VALIDATE, null, false, { paths: [root] });
    const config = defaultValidationConfig(root);
    const { Worker, MessageChannel } = require('worker_threads');
    // [0] bumped after each answer; [1] set once the worker has stopped
    const signal = new Int32Array(new SharedArrayBuffer(8));
    const { port1, port2 } = new MessageChannel();
    worker = new Worker(path.join(__dirname, 'jsii-validation-worker.cjs'), {
      workerData: {
        port: port2,
        signal,
        modulePath,
        config,
        resultsDir: privateCacheDir('MLGATE_VALIDATION_CACHE', 'cfn-validation-cache', 'v1'),
      },
      transferList: [port2],
      execArgv: [], // none of this file's changes in there
    });
    worker.unref(); // never what keeps node running once Python is done
    return { module: validationModule(port1, signal, JSON.stringify(config)) };
  } catch (err) {
    if (worker !== undefined) worker.terminate();
    process.stderr.write(`mlgate: validation engine on node's main thread: ${err.message}\n`);
    return null;
  }
}

// What the plugin uses of @aws/cloudformation-validate (CompositeEngine, TemplateFile, version),
// run in the worker; anything else comes from the module itself, loaded here when first used.
function validationModule(port, signal, defaultKey) {
  const { receiveMessageOnPort } = require('worker_threads');
  let seq = 0;

  function call(op, args, wait) {
    const mine = ++seq;
    port.postMessage({ seq: mine, op, args });
    if (!wait) return undefined; // its error, if any, is thrown by the engine's next call
    for (;;) {
      const seen = Atomics.load(signal, 0);
      const got = receiveMessageOnPort(port);
      if (got !== undefined) {
        if (got.message.seq !== mine) continue; // the answer to a call nobody waits for
        if ('error' in got.message) throw got.message.error;
        return got.message.value;
      }
      if (Atomics.load(signal, 1) !== 0) {
        throw new Error(`mlgate: the CloudFormation validation worker stopped (during ${op})`);
      }
      Atomics.wait(signal, 0, seen);
    }
  }

  class TemplateFile {
    constructor(file) {
      this.path = file;
    }

    readBytes() {
      return fs.readFileSync(this.path);
    }
  }

  let engines = 0;
  class CompositeEngine {
    constructor(config) {
      this.id = ++engines;
      // the default config's engine is being built already: no wait; another waits, so a config
      // the engine refuses throws here, as the module's own constructor would
      call('create', { id: this.id, config }, JSON.stringify(config) !== defaultKey);
    }

    validateTemplate(template, config) {
      const spec = template instanceof TemplateFile
        ? { path: template.path }
        : { content: template.readBytes(), name: template.name };
      return call('validateTemplate', { id: this.id, template: spec, options: config ?? {} }, true);
    }

    validateStandard(template, config) {
      return this.validateTemplate(template, { ...config, detailLevel: 'STANDARD' });
    }

    validateDetailed(template, config) {
      return this.validateTemplate(template, { ...config, detailLevel: 'DETAILED' });
    }

    listRules() {
      return call('listRules', { id: this.id }, true);
    }

    engineName() {
      return call('engineName', { id: this.id }, true);
    }

    free() {
      call('free', { id: this.id }, false);
    }
  }

  const own = { CompositeEngine, TemplateFile, version: () => call('version', {}, true) };
  return (loadReal) => {
    let real;
    return new Proxy(own, {
      get(target, name) {
        if (Object.hasOwn(target, name)) return target[name];
        real ??= loadReal();
        return real[name];
      },
    });
  };
}

// 5. aws-cdk-lib's modules loaded ahead, while node would only wait. aws-cdk-lib loads each of
//    its modules when first used, so a synth's build stops some 500 times for node to load one
//    (0.5 s for the default product) while Python waits. Yet right after `cdk.App()`, app.py
//    imports mlgate and reads the manifests for about a second without calling node. So the
//    files the previous run of the same program (the parent's command line and folder) loaded
//    after its first `cdk.App()` are listed in the code cache's folder, and node loads them, in
//    the same order, when it next waits for a request after that `cdk.App()`: the modules CDK
//    would load, earlier. The list is written again at exit: the files CDK loaded itself, and
//    those loaded ahead that CDK then asked for (so one no longer used drops out). A file that
//    fails to load stops the list (CDK then loads it and reports its error itself).
//    MLGATE_JSII_PREFETCH=off turns it off.
if (cacheDir !== undefined && process.env.MLGATE_JSII_PREFETCH !== 'off') {
  const WEEK_MS = 7 * 24 * 3600 * 1000;
  let listFile;
  try {
    const parent = fs.readFileSync(`/proc/${process.ppid}/cmdline`);
    const key = crypto.createHash('sha256').update(parent).update('\0').update(process.cwd());
    listFile = path.join(cacheDir, `modules-${key.digest('hex').slice(0, 32)}.json`);
  } catch {
    listFile = undefined; // no /proc: no way to tell one program from another
  }
  let prefix; // <jsii's folder>/node_modules/, where it puts aws-cdk-lib and the others
  let state = 'waiting'; // -> 'due' (cdk.App() asked for) -> 'loading' -> 'done'
  const loadedByCdk = [];
  const loadedAhead = []; // [module, file], in the order they were loaded
  const ahead = new WeakMap(); // a module's exports -> its file, for the files loaded ahead
  const usedAhead = new Set();

  const compileRecorded = Module.prototype._compile;
  Module.prototype._compile = function compileAndRecord(content, filename, format) {
    const result = compileRecorded.call(this, content, filename, format);
    if (state !== 'waiting' && prefix !== undefined && filename.startsWith(prefix)) {
      const relative = filename.slice(prefix.length);
      if (state === 'loading') loadedAhead.push([this, relative]);
      else loadedByCdk.push(relative);
    }
    return result;
  };

  const requireModule = Module.prototype.require;
  Module.prototype.require = function requireNoting(id) {
    const exported = requireModule.call(this, id);
    if (state === 'done') {
      const file = ahead.get(exported); // undefined for anything not loaded ahead
      if (file !== undefined) usedAhead.add(file);
    }
    return exported;
  };

  onApp.push(() => {
    if (listFile === undefined || cdkRoot === undefined) return;
    prefix = cdkRoot.slice(0, -(CDK_LIB.length - 1)); // up to and with node_modules/
    state = 'due';
    onNextWait.push(loadAheadNow);
  });

  function loadAheadNow() {
    state = 'loading';
    loadAhead();
    state = 'done';
    for (const [mod, relative] of loadedAhead) {
      const exported = mod.exports;
      if (exported !== null && (typeof exported === 'object' || typeof exported === 'function')) {
        ahead.set(exported, relative);
      }
    }
  }

  function loadAhead() {
    let list;
    try {
      list = JSON.parse(fs.readFileSync(listFile, 'utf-8'));
    } catch {
      return; // the program's first run: nothing listed yet
    }
    if (!Array.isArray(list)) return;
    for (const relative of list) {
      const file = prefix + relative;
      if (Module._cache[file] !== undefined) continue;
      try {
        require(file);
      } catch {
        return;
      }
    }
  }

  process.once('exit', () => {
    const report = process.env.MLGATE_JSII_PREFETCH_REPORT; // for the tests and the bench
    if (report) {
      const figures = {
        ahead: loadedAhead.length, used: usedAhead.size, byCdk: loadedByCdk.length, list: listFile,
      };
      fs.writeFileSync(report, JSON.stringify(figures));
    }
    if (state === 'waiting' || state === 'due') return;
    const list = [...usedAhead, ...loadedByCdk];
    if (list.length === 0) return;
    // lists no program has run for a week go (a test's program names its temporary folders)
    if (writeWhole(listFile, JSON.stringify(list))) pruneUnused(cacheDir, 'modules-', WEEK_MS);
  });
}
