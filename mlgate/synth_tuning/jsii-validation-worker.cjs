'use strict';
// A worker thread of jsii's node (started by jsii-preload.cjs, part 4): builds CDK's
// CloudFormation validation engine (@aws/cloudformation-validate, WebAssembly) from the
// program's first `cdk.App()`, and runs it for the main thread. Requests come in order on
// `port`; each answer goes back on `port`, then `signal` is bumped so a main thread blocked in
// Atomics.wait wakes up and takes it synchronously (receiveMessageOnPort).
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const v8 = require('v8');
const { workerData } = require('worker_threads');

const { pruneUnused, writeWhole } = require('./jsii-files.cjs');

// config: the one aws-cdk-lib's CloudFormationValidatePlugin gives its engine by default;
// resultsDir: where reports are kept (below), or undefined
const { port, signal, modulePath, config, resultsDir } = workerData;

let validate; // the real module, loaded here only
let loadError; // why it could not be loaded, if it could not
let ahead; // { key, engine }: the default config's engine, built before anyone asks
const engines = new Map(); // id -> engine, or { error } for one that failed to build
const configs = new Map(); // id -> the engine's config, as JSON
const failed = Symbol('failed');

function build(config) {
  try {
    return new validate.CompositeEngine(config);
  } catch (error) {
    return { [failed]: error };
  }
}

try {
  validate = require(modulePath);
  ahead = { key: JSON.stringify(config), engine: build(config) };
} catch (error) {
  loadError = error;
}

function loaded() {
  if (loadError !== undefined) throw loadError;
  return validate;
}

function engineFor(id) {
  const engine = engines.get(id);
  if (engine === undefined) throw new Error(`mlgate validation worker: no engine ${id}`);
  if (engine[failed] !== undefined) throw engine[failed];
  return engine;
}

// Reports already made. The engine is deterministic: its report is a function of its version,
// its config, the options and the template's bytes, which key the entry (SHA-256), and of the
// label, which only names the file (`filePath`): a report that mentions the label anywhere else
// is not kept. A synth whose templates did not change since the last one (a second `make synth`,
// the test suite's synths of the same examples) validates nothing again; a changed template is
// validated by the engine. MLGATE_VALIDATION_CACHE=off or =DIR (jsii-preload.cjs, part 4).
function resultEntry(configKey, options, bytes) {
  if (resultsDir === undefined) return undefined;
  const hash = crypto.createHash('sha256');
  hash.update(JSON.stringify([validate.version(), configKey, options]));
  hash.update('\0');
  hash.update(bytes);
  return path.join(resultsDir, hash.digest('hex'));
}

function readResult(entry) {
  try {
    const kept = v8.deserialize(fs.readFileSync(entry));
    const now = new Date();
    fs.utimesSync(entry, now, now); // in use: not pruned
    return kept;
  } catch {
    return undefined; // none, or unreadable: the engine validates
  }
}

const PRUNE_AFTER_MS = 30 * 24 * 3600 * 1000;
let pruned = false;

function keepResult(entry, report, label) {
  const { filePath, ...rest } = report;
  if (filePath !== label || JSON.stringify(rest).includes(JSON.stringify(label).slice(1, -1))) {
    return;
  }
  // once a process, when it adds one: entries unused for 30 days go
  if (writeWhole(entry, v8.serialize(rest)) && !pruned) {
    pruned = true;
    pruneUnused(resultsDir, '', PRUNE_AFTER_MS);
  }
}

const operations = {
  create({ id, config }) {
    loaded();
    const key = JSON.stringify(config);
    configs.set(id, key);
    if (ahead !== undefined && ahead.key === key) {
      engines.set(id, ahead.engine); // each engine is handed out once: none is shared
      ahead = undefined;
    } else {
      engines.set(id, build(config));
    }
    engineFor(id); // a config the engine refuses fails here, as `new CompositeEngine` would
  },
  validateTemplate({ id, template: spec, options }) {
    const engine = engineFor(id);
    // what the engine reads from a TemplateFile (its path labels the report) or TemplateContent
    const bytes = spec.path !== undefined ? fs.readFileSync(spec.path) : spec.content;
    const label = spec.path ?? spec.name ?? validate.DEFAULT_TEMPLATE_NAME;
    const entry = resultEntry(configs.get(id), options, bytes);
    const kept = entry && readResult(entry);
    if (kept !== undefined) return { filePath: label, ...kept };
    const report = engine.validateTemplate(new validate.TemplateContent(bytes, label), options);
    if (entry) keepResult(entry, report, label);
    return report;
  },
  listRules: ({ id }) => engineFor(id).listRules(),
  engineName: ({ id }) => engineFor(id).engineName(),
  free({ id }) {
    const engine = engines.get(id);
    engines.delete(id);
    if (engine !== undefined && engine[failed] === undefined) engine.free();
  },
  version: () => loaded().version(),
};

// The main thread may be waiting for an answer this thread will never give: wake it, so it
// reports the worker gone instead of waiting for ever.
process.on('exit', () => {
  Atomics.store(signal, 1, 1);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
});

port.on('message', ({ seq, op, args }) => {
  let answer;
  try {
    answer = { seq, value: operations[op](args) };
  } catch (error) {
    answer = { seq, error };
  }
  try {
    port.postMessage(answer);
  } catch (error) {
    // an answer structured clone cannot copy: say so rather than leave the main thread waiting
    const cannot = new Error(`mlgate validation worker: ${op}: ${error.message}`);
    port.postMessage({ seq, error: cannot });
  }
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
});
