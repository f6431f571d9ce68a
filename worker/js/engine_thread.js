'use strict';
// An engine thread (worker_threads, started by engine_pool.js with a 16 MiB stack so
// QuickJS's own 256 KiB stack check always trips before V8's). It runs many tasks at once,
// interleaved at their awaits; every message to and from the main thread is a protocol
// message (run, call_result, cancel in; log, call, done out) plus 'warm' and 'stderr'.
const { parentPort, workerData } = require('worker_threads');
const { TaskRun } = require('./sandbox');

const wasmModule = workerData.wasmModule; // compiled once by the main thread, shared
const shared = new Int32Array(workerData.sharedBuffer);
const runs = new Map(); // id -> TaskRun

// A done message carries the result as JSON text (resultText): the main thread splices it
// into the protocol line, so a big result is not parsed and cloned once more.
function post(m) {
  parentPort.postMessage(m);
}

async function start(m) {
  const run = new TaskRun(wasmModule, m, post, shared);
  runs.set(m.id, run);
  let done;
  try {
    done = await run.run();
  } catch (e) {
    done = { op: 'done', id: m.id, ok: false, limit: null,
      error: { name: 'EngineError', message: `${e && e.name}: ${e && e.message}`, stack: '' } };
  }
  runs.delete(m.id);
  post(done);
}

parentPort.on('message', (m) => {
  if (m.op === 'run') start(m);
  else if (m.op === 'call_result') { const r = runs.get(m.id); if (r) r.callResult(m); }
  else if (m.op === 'cancel') { const r = runs.get(m.id); if (r) r.cancel(); }
});

// A rejection or exception nobody handled is a host bug: say so on stderr, keep the thread
// (the tasks it belonged to end by their own deadline; the watchdog covers the rest).
process.on('unhandledRejection', (e) => {
  post({ op: 'stderr', text: `engine thread: unhandled rejection: ${e && e.stack || e}` });
});
process.on('uncaughtException', (e) => {
  post({ op: 'stderr', text: `engine thread: uncaught exception: ${e && e.stack || e}` });
});

// Warm-up: a few tasks through the whole path (instantiate, eval, an awaited call answered
// locally, a timer, JSON) so the first real tasks do not pay for lazy compilation.
const WARMUP_CODE = `module.exports = async function execute(input, context) {
  const r = await context.tasks.execute('warmup', { n: input.n });
  await new Promise((resolve) => setTimeout(resolve, 0));
  context.log('warm', r.n);
  return JSON.parse(JSON.stringify({ n: r.n, s: 'x'.repeat(10), a: [1, 2, 3].map((x) => x * 2) }));
};`;

async function warmUp(count) {
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const msg = { op: 'run', id: `warmup/${i}`, code: WARMUP_CODE, filename: 'warmup.js', input: { n: i },
      memory_mb: 16, deadline: Date.now() + 10000, slot: workerData.warmupSlot };
    let run;
    const send = (m) => {
      if (m.op === 'call') setImmediate(() => run.callResult({ call: m.call, ok: true, result: m.input }));
    };
    run = new TaskRun(wasmModule, msg, send, shared);
    const done = await run.run();
    if (!done.ok) throw new Error('warm-up task failed: ' + JSON.stringify(done.error));
  }
  return Date.now() - t0;
}

warmUp(workerData.warmup).then(
  (ms) => parentPort.postMessage({ op: 'warm', ms }),
  (e) => parentPort.postMessage({ op: 'warm_failed', error: String(e && e.stack || e) }));
