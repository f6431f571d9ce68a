'use strict';
// Behaviour cases: results, calls, logs, errors, protocol edges. Each takes a started Host.
// Limits and sandbox escapes are in limit_cases.js.
const assert = require('assert');
const limits = require('./limit_cases');

let seq = 0;
const id = (name) => `task-${name}/${++seq}`;

function failed(r, name, messageRe, limit = null) {
  assert.strictEqual(r.done.ok, false, `expected a failure, got ${JSON.stringify(r.done)}`);
  assert.strictEqual(r.done.error.name, name, JSON.stringify(r.done.error));
  assert.match(r.done.error.message, messageRe);
  assert.strictEqual(r.done.limit, limit, JSON.stringify(r.done));
}

const onSharedHost = {
  async 'echo returns the input'(host) {
    const r = await host.run(id('echo'), 'module.exports = async function execute(input, context) { return input; }',
      { input: { s: 'héllo', a: [1, null, true], o: { x: 1.5 } } });
    assert.deepStrictEqual(r.done.result, { s: 'héllo', a: [1, null, true], o: { x: 1.5 } });
  },

  async 'a sync function, undefined becomes null, missing input is {}'(host) {
    let r = await host.run(id('sync'), 'module.exports = function (input) { return input.n * 2 }');
    assert.strictEqual(r.done.result, 14);
    r = await host.run(id('undef'), 'module.exports = async () => {}');
    assert.strictEqual(r.done.ok, true);
    assert.strictEqual(r.done.result, null);
    r = await host.run(id('noinput'), 'module.exports = (input) => input', { input: undefined });
    assert.deepStrictEqual(r.done.result, {});
    r = await host.run(id('thenable'), 'module.exports = () => ({ then(resolve) { resolve(5) } })');
    assert.strictEqual(r.done.result, 5);
    r = await host.run(id('syncthrow'), "module.exports = function execute() {\n  null.x;\n}");
    failed(r, 'TypeError', /null/);
    assert.strictEqual(r.done.error.line, 2);
  },

  async '100 sequential awaited calls'(host) {
    const code = `module.exports = async (input, context) => {
      let sum = 0;
      for (let i = 1; i <= 100; i++) sum += (await context.tasks.execute('add', { i })).echo.i;
      return sum;
    }`;
    const r = await host.run(id('seq'), code);
    assert.strictEqual(r.done.result, 5050);
    assert.deepStrictEqual(r.calls.map((c) => c.call), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.deepStrictEqual(r.calls[0].target, 'add');
    assert.deepStrictEqual(r.calls[0].options, {});
  },

  async 'Promise.all of 50 calls, answered in reverse order'(host) {
    const code = `module.exports = async (input, context) =>
      (await Promise.all(Array.from({ length: 50 }, (_, i) =>
        context.tasks.execute({ task_type: 'echo', payload: { i } }, { i }, { priority: 'high', timeout_seconds: 5 }))))
        .map((r) => r.echo.i)`;
    const taskId = id('all');
    const pending = [];
    const running = host.run(taskId, code, { onCall: (c) => { pending.push(c); return null; } });
    const deadline = Date.now() + 10000;
    while (pending.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.strictEqual(pending.length, 50);
    assert.deepStrictEqual(pending[3].target, { task_type: 'echo', payload: { i: 3 } });
    assert.deepStrictEqual(pending[3].options, { priority: 'high', timeout_seconds: 5 });
    for (const c of pending.reverse()) host.send({ op: 'call_result', id: taskId, call: c.call, ok: true, result: { echo: c.input } });
    const r = await running;
    assert.deepStrictEqual(r.done.result, Array.from({ length: 50 }, (_, i) => i));
  },

  async '40 tasks at once, each with its own calls and result'(host) {
    const code = `module.exports = async (input, context) => {
      const a = await context.tasks.execute('double', { v: input.v });
      await new Promise((r) => setTimeout(r, input.v % 7));
      const b = await context.tasks.execute('double', { v: a.echo.v * 2 });
      return { v: input.v, b: b.echo.v };
    }`;
    const runs = Array.from({ length: 40 }, (_, v) => host.run(id(`many-${v}`), code, { input: { v } }));
    const results = (await Promise.all(runs)).map((r) => r.done.result);
    assert.deepStrictEqual(results, Array.from({ length: 40 }, (_, v) => ({ v, b: v * 2 })));
  },

  async 'a failed child rejects with a catchable TaskError'(host) {
    const code = `module.exports = async (input, context) => {
      try { await context.tasks.execute('fails', {}); return 'not thrown'; }
      catch (e) { return { name: e.name, message: e.message, taskId: e.taskId, status: e.status, isError: e instanceof Error }; }
    }`;
    const onCall = () => ({ ok: false, error: 'child task task-9 (js) ended failed: Error: no', task_id: 'task-9', status: 'failed' });
    let r = await host.run(id('reject'), code, { onCall });
    assert.deepStrictEqual(r.done.result, { name: 'TaskError', message: 'child task task-9 (js) ended failed: Error: no',
      taskId: 'task-9', status: 'failed', isError: true });
    r = await host.run(id('uncaught'), "module.exports = async (i, c) => c.tasks.execute('fails')", { onCall });
    failed(r, 'TaskError', /^child task task-9 \(js\) ended failed: Error: no$/);
  },

  async 'bad execute arguments throw TypeError in the task'(host) {
    const r = await host.run(id('badargs'), `module.exports = async (i, c) => {
      const out = [];
      for (const args of [[42], [{ payload: {} }], ['x', 10n], ['x', {}, [1]]]) {
        try { c.tasks.execute(...args); out.push('no error'); } catch (e) { out.push(e.name + ': ' + e.message); }
      }
      return out;
    }`);
    assert.strictEqual(r.calls.length, 0);
    assert.match(r.done.result[0], /^TypeError: context.tasks.execute: the target must be a published task name/);
    assert.match(r.done.result[1], /target.task_type must be a non-empty string/);
    assert.match(r.done.result[2], /input is not JSON/);
    assert.match(r.done.result[3], /options must be an object, got an array/);
  },

  async 'context.log lines: joined by a space, objects as JSON, capped'(host) {
    const code = `module.exports = async (input, context) => {
      context.log('s', 1, { a: [1] }, null, undefined, true, new TypeError('bad'), [1, 'x']);
      context.log();
      context.log('x'.repeat(100000));
      return 'ok';
    }`;
    const r = await host.run(id('log'), code);
    assert.deepStrictEqual(r.logs.slice(0, 2), ['s 1 {"a":[1]} null undefined true TypeError: bad [1,"x"]', '']);
    assert.ok(Buffer.byteLength(r.logs[2]) <= 64 * 1024, 'a log line is capped at 64 KiB');
    assert.match(r.logs[2], /^x+ \.\.\. \[line truncated at 64 KiB\]$/);
  },

  async 'at most 10000 log lines, then one note'(host) {
    const r = await host.run(id('loglines'), 'module.exports = async (i, c) => { for (let k = 0; k < 12000; k++) c.log(k); return 1 }', { wait: 30000 });
    assert.strictEqual(r.done.result, 1);
    assert.strictEqual(r.logs.length, 10001);
    assert.strictEqual(r.logs[9999], '9999');
    assert.match(r.logs[10000], /more than 10000 lines or 4 MiB/);
    const big = await host.run(id('logbytes'), "module.exports = async (i, c) => { for (let k = 0; k < 200; k++) c.log('y'.repeat(60000)); return 2 }", { wait: 30000 });
    assert.strictEqual(big.done.result, 2);
    assert.strictEqual(big.logs.length, Math.floor(4 * 1024 * 1024 / 60000) + 1, 'lines up to 4 MiB, then the note');
    assert.match(big.logs[big.logs.length - 1], /the rest of this task's log is dropped/);
  },

  async 'a syntax error names its line and column'(host) {
    const r = await host.run(id('syntax'), 'module.exports = async function execute(input) {\n  const x = ;\n  return x;\n}');
    failed(r, 'SyntaxError', /unexpected token/);
    assert.strictEqual(r.done.error.line, 2);
    assert.strictEqual(r.done.error.column, 13);
    assert.match(r.done.error.stack, /task\.js:2:13/);
    assert.strictEqual(r.done.phase, 'load', 'a module that cannot load: the worker makes it permanent');
  },

  async 'a runtime error has its stack, in the given file name'(host) {
    const code = "function helper(x) {\n  throw new Error('boom ' + x);\n}\nmodule.exports = async (input) => {\n  await null;\n  return helper(input.n);\n};";
    const r = await host.run(id('boom'), code, { filename: 'boom@v3.js' });
    failed(r, 'Error', /^boom 7$/);
    assert.strictEqual(r.done.error.line, 2);
    assert.match(r.done.error.stack, /at helper \(boom@v3\.js:2:/);
    assert.match(r.done.error.stack, /boom@v3\.js:6:/);
    assert.doesNotMatch(r.done.error.stack, /<engine>/);
    assert.strictEqual(r.done.phase, undefined, 'an error of the running task is no load failure');
  },

  async 'module.exports must be a function'(host) {
    const kinds = { 'const x = 1;': 'an object', 'module.exports = { execute: async () => 1 }': 'an object',
      'exports.execute = () => 1': 'an object', 'module.exports = null': 'null', 'module.exports = [1]': 'an array',
      'module = 5': 'undefined' };
    for (const [code, kind] of Object.entries(kinds)) {
      const r = await host.run(id('noexport'), code);
      failed(r, 'TypeError', new RegExp(`^module\\.exports is not a function: it is ${kind} \\(export the function itself`));
      assert.strictEqual(r.done.phase, 'load');
    }
  },

  async 'a result that is not JSON fails'(host) {
    const cases = { fn: 'async () => () => 1', bigint: 'async () => 10n', cycle: 'async () => { const a = {}; a.a = a; return a }',
      symbol: "async () => Symbol('x')", nested: 'async () => ({ big: 1n })' };
    for (const [name, fn] of Object.entries(cases)) {
      const r = await host.run(id(`nonjson-${name}`), `module.exports = ${fn}`);
      failed(r, 'TypeError', /^result is not JSON: /);
    }
  },

  async 'the result uses the original JSON.stringify'(host) {
    const r = await host.run(id('tamper'), "module.exports = async () => { JSON.stringify = () => '{not json'; return { a: 1 } }");
    assert.deepStrictEqual(r.done.result, { a: 1 });
  },

  async 'thrown strings, null and objects'(host) {
    let r = await host.run(id('str'), "module.exports = async () => { throw 'just a string' }");
    failed(r, 'Error', /^just a string$/);
    r = await host.run(id('null'), 'module.exports = async () => { throw null }');
    failed(r, 'Error', /^null was thrown$/);
    r = await host.run(id('obj'), 'module.exports = () => { throw { code: 3 } }');
    failed(r, 'Error', /thrown value \{"code":3\}/);
    r = await host.run(id('getter'), "module.exports = () => { throw { get message() { throw 1 }, name: 'Odd' } }");
    failed(r, 'Odd', /thrown value/);
  },

  async 'setTimeout works, is bounded, setInterval is absent'(host) {
    let r = await host.run(id('timer'), `module.exports = async () => {
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 30));
      const cleared = setTimeout(() => { throw new Error('must not run') }, 1);
      clearTimeout(cleared);
      await new Promise((r) => setTimeout(r, 5));
      return [Date.now() - t0 >= 25, typeof setInterval, typeof setTimeout(() => {}, 1)];
    }`);
    assert.deepStrictEqual(r.done.result, [true, 'undefined', 'number']);
    r = await host.run(id('timers'), 'module.exports = async () => { for (let i = 0; i < 101; i++) setTimeout(() => {}, 10000) }');
    failed(r, 'RangeError', /at most 100 pending timers/);
    const t0 = Date.now();
    r = await host.run(id('longtimer'), 'module.exports = () => new Promise((r) => setTimeout(r, 1e9))', { timeout_ms: 300 });
    assert.strictEqual(r.done.limit, 'timeout');
    assert.ok(Date.now() - t0 < 3000);
  },

  async 'a promise that can never settle fails at once'(host) {
    const r = await host.run(id('never'), 'module.exports = () => new Promise(() => {})');
    failed(r, 'Error', /never settles/);
  },

  async 'protocol: unknown ops, bad lines and bad runs'(host) {
    host.send({ op: 'frobnicate', id: 'x' });
    host.send('this is not json');
    host.send({ op: 'call_result', id: 'nobody', call: 1, ok: true, result: 1 });
    host.send({ op: 'cancel', id: 'nobody' });
    let r = await host.run(id('badmem'), 'module.exports = () => 1', { memory_mb: 0 });
    failed(r, 'EngineError', /^run\.memory_mb: must be an integer 1\.\.2048, got 0$/);
    r = await host.run(id('badtimeout'), 'module.exports = () => 1', { timeout_ms: -5 });
    failed(r, 'EngineError', /^run\.timeout_ms: /);
    r = await host.run(id('nocode'), undefined);
    failed(r, 'EngineError', /^run\.code: must be a string/);
  },

  ...limits.onSharedHost,
};

module.exports = { onSharedHost, onOneThread: limits.onOneThread };
