'use strict';
// retire-cluster's js engine host: one long-lived node process per worker, speaking
// line-delimited JSON on stdin (run, call_result, cancel) and stdout (ready, log, call,
// done); stderr is the host's own log. Tasks run in QuickJS (wasm) on a few engine threads
// (engine_pool.js, engine_thread.js, sandbox.js). The worker's side of the protocol is
// worker/handlers/js_engine.cc; unknown ops are ignored, the host exits 0 at stdin EOF.
// Exactly one `done` per `run`; after it, call_results and cancels for that id are ignored.
// usage: node host.js [--threads N (default 2)] [--warmup N tasks per thread (default 4)]
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { checkRun, parseArgs } = require('./protocol');

function log(text) {
  process.stderr.write(`js engine host: ${text}\n`);
}

function fatal(text, code) {
  log(text);
  process.exit(code);
}

// A done message from an engine thread carries its result as JSON text, spliced in as is
// (the thread has checked it parses).
function write(m) {
  const line = m.op === 'done' && m.ok && m.resultText !== undefined
    ? `{"op":"done","id":${JSON.stringify(m.id)},"ok":true,"result":${m.resultText}}`
    : JSON.stringify(m);
  process.stdout.write(line + '\n');
}

function engineVersion() {
  const entry = require.resolve('quickjs-emscripten-core');
  let dir = path.dirname(entry);
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === 'quickjs-emscripten-core') return `${pkg.name} ${pkg.version}`;
    }
  }
  return 'quickjs-emscripten-core (version unknown)';
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    fatal(`${e.message}\nusage: node host.js [--threads N] [--warmup N]`, 2);
  }

  // The wasm is compiled once here and shared by every engine thread and task instance.
  let wasmModule;
  let engine;
  try {
    const wasmPath = require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
    wasmModule = new WebAssembly.Module(fs.readFileSync(wasmPath));
    engine = engineVersion();
  } catch (e) {
    fatal(`cannot load the QuickJS engine (run \`npm ci --omit=dev\` in ${__dirname}): ${e.message}`, 1);
  }

  // A bug in the host must not end it silently: log it; the affected task is answered by
  // its own handler (try/catch below) or, at the latest, by the watchdog.
  process.on('uncaughtException', (e) => log(`uncaught exception: ${e && e.stack || e}`));
  process.on('unhandledRejection', (e) => log(`unhandled rejection: ${e && e.stack || e}`));
  process.stdout.on('error', (e) => fatal(`stdout: ${e.message}; exiting`, 0)); // the worker is gone

  const { EnginePool } = require('./engine_pool');
  let ready = false;
  const early = []; // lines that came before ready (the worker should send none)
  const pool = new EnginePool({
    threads: args.threads, warmup: args.warmup, wasmModule, write, log,
    onReady: () => {
      ready = true;
      write({ op: 'ready', node: process.version, engine, threads: args.threads });
      for (const line of early.splice(0)) handleLine(pool, line);
    },
    onFatal: (text) => fatal(text, 1),
  });

  const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  input.on('line', (line) => {
    if (ready) handleLine(pool, line); else early.push(line);
  });
  input.on('close', () => process.exit(0));
}

function handleLine(pool, line) {
  if (!line.trim()) return;
  let m;
  try {
    m = JSON.parse(line);
  } catch (e) {
    log(`ignored a line that is not JSON (${e.message}): ${line.slice(0, 200)}`);
    return;
  }
  if (!m || typeof m !== 'object') return;
  try {
    if (m.op === 'run') {
      const checked = checkRun(m);
      if (checked.run) pool.run(checked.run);
      else if (typeof m.id === 'string' && m.id) pool.answerError(m.id, 'EngineError', checked.error, null);
      else log(`ignored a run without an id: ${checked.error}`);
    } else if (m.op === 'call_result') {
      if (typeof m.id === 'string') pool.callResult(m);
    } else if (m.op === 'cancel') {
      if (typeof m.id === 'string') pool.cancel(m);
    }
    // Other ops are ignored: a newer worker may send more than this host knows.
  } catch (e) {
    log(`error handling ${m.op} ${m.id}: ${e && e.stack || e}`);
    if (m.op === 'run' && typeof m.id === 'string') {
      const task = pool.tasks.get(m.id);
      if (!task) pool.answerError(m.id, 'EngineError', `the engine host failed to start the task: ${e && e.message}`, null);
    }
  }
}

main();
