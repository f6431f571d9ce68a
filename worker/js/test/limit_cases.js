'use strict';
// Limits (time, memory, stack), sandbox escapes, cancel and the watchdog. Each takes a Host.
const assert = require('assert');

let seq = 0;
const id = (name) => `limit-${name}/${++seq}`;

// Waits (bounded) until cond() holds.
async function until(cond, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function timed(fn) {
  const t0 = Date.now();
  const r = await fn();
  return { r, ms: Date.now() - t0 };
}

function limited(r, limit) {
  assert.strictEqual(r.done.ok, false, JSON.stringify(r.done));
  assert.strictEqual(r.done.limit, limit, JSON.stringify(r.done));
}

// A single native call QuickJS's interrupt handler never sees: a naive substring search of
// about 10^12 steps, in the task and in the serialization of its result. (JSON.stringify of
// a 100000-deep array is another: ~10 s before its stack check trips.) Only the host's
// watchdog (terminating the thread) ends them, at deadline + 1 s.
const HANG = "'a'.repeat(1e7).indexOf('a'.repeat(1e5) + 'b')";
const NATIVE_HANG = `module.exports = async () => ${HANG}`;
const RESULT_HANG = `module.exports = async () => ({ toJSON() { return ${HANG} } })`;

const onSharedHost = {
  async 'an infinite loop is interrupted at its deadline'(host) {
    for (const code of ['module.exports = async () => { for (;;) {} }', 'for (;;) {}',
      'module.exports = async () => { for (;;) await null }', 'module.exports = async () => ({ toJSON() { for (;;) {} } })']) {
      const { r, ms } = await timed(() => host.run(id('loop'), code, { timeout_ms: 300 }));
      limited(r, 'timeout');
      assert.match(r.done.error.message, /^interrupted: the task ran past its deadline$/, 'by the interrupt, not the watchdog');
      assert.ok(ms < 5000, `stopped after ${ms} ms`);
    }
  },

  async 'long native calls: the watchdog restarts the thread, the host survives'(host) {
    // 1.5 s: the thread the first kill starts must boot before the second task's deadline.
    for (const code of [NATIVE_HANG, RESULT_HANG]) {
      const { r, ms } = await timed(() => host.run(id('native'), code, { timeout_ms: 1500 }));
      limited(r, 'timeout');
      assert.match(r.done.error.message, /engine was stopped/);
      assert.ok(ms < 6000, `watchdog answered after ${ms} ms`);
    }
  },

  async 'memory bombs end with limit memory'(host) {
    const bombs = {
      arrayFill: 'const a = []; for (;;) a.push(new Array(1e5).fill(1));',
      objects: "const a = []; for (;;) a.push({ x: a.length, y: 'abc' + a.length });",
      stringGrowth: "let s = ''; for (let i = 0; ; i++) s += String(i).repeat(1000);",
      bigStrings: "const a = []; for (;;) a.push('x'.repeat(1e6) + a.length);",
      typedArrays: 'const a = []; for (;;) a.push(new Uint8Array(1e6));',
      oneHuge: 'return new ArrayBuffer(1e9).byteLength;',
    };
    for (const [name, body] of Object.entries(bombs)) {
      const r = await host.run(id(`mem-${name}`), `module.exports = async () => { ${body} }`, { timeout_ms: 20000, memory_mb: 32, wait: 30000 });
      limited(r, 'memory');
      assert.match(r.done.error.message, /out of memory/, `${name}: ${JSON.stringify(r.done.error)}`);
    }
    // Doubling a string hits QuickJS's length limit (ropes take little memory): a plain failure.
    const doubling = await host.run(id('mem-doubling'), "module.exports = async () => { let s = 'x'; for (;;) s += s; }", { memory_mb: 32 });
    assert.strictEqual(doubling.done.ok, false);
    assert.match(doubling.done.error.message, /string too long|out of memory/);
    // Within the cap is fine.
    const ok = await host.run(id('mem-ok'), 'module.exports = async () => { const a = []; for (let i = 0; i < 20; i++) a.push(new Uint8Array(1e6)); return a.length }', { memory_mb: 32 });
    assert.strictEqual(ok.done.result, 20);
  },

  async 'deep recursion ends with limit stack'(host) {
    const patterns = [
      'function f(n) { return f(n + 1) + 1 } module.exports = async () => f(0)',
      'function f(n) { return [n].map((x) => f(x + 1))[0] } module.exports = async () => f(0)',
      'const p = new Proxy({}, { get(t, k, r) { return r[k] } }); module.exports = async () => p.x',
      "module.exports = async () => JSON.parse('['.repeat(200000) + ']'.repeat(200000)).length",
      "module.exports = async () => eval('('.repeat(100000) + '1' + ')'.repeat(100000))",
    ];
    for (const code of patterns) {
      const r = await host.run(id('stack'), code, { timeout_ms: 10000 });
      limited(r, 'stack');
      assert.match(r.done.error.message, /stack overflow/, code);
    }
  },

  async 'escapes: no require, process, Function tricks or import'(host) {
    const probes = {
      requireFs: "require('fs').readFileSync('/etc/passwd', 'utf8')",
      processEnv: 'process.env',
      globalCtor: "typeof globalThis.constructor.constructor('return this')().process",
      logCtor: "context.log.constructor('return process')()",
      executeCtor: "typeof context.tasks.execute.constructor.constructor('return this')().require",
      functionThis: "typeof Function('return this')().process",
      asyncCtor: "await (async () => {}).constructor('return typeof process')()",
      importFs: "Object.keys(await import('fs'))",
      importFile: "await import('/etc/passwd')",
    };
    const results = {};
    for (const [name, expr] of Object.entries(probes)) {
      const r = await host.run(id(`escape-${name}`), `module.exports = async (input, context) => ${expr}`);
      results[name] = r.done.ok ? r.done.result : `${r.done.error.name}: ${r.done.error.message}`;
    }
    assert.deepStrictEqual(results, {
      requireFs: "ReferenceError: 'require' is not defined",
      processEnv: "ReferenceError: 'process' is not defined",
      globalCtor: 'undefined',
      logCtor: "ReferenceError: 'process' is not defined",
      executeCtor: 'undefined',
      functionThis: 'undefined',
      asyncCtor: 'undefined',
      importFs: "ReferenceError: could not load module 'fs'",
      importFile: "ReferenceError: could not load module '/etc/passwd'",
    });
    const r = await host.run(id('static-import'), "import fs from 'fs'; module.exports = async () => 1");
    assert.strictEqual(r.done.error.name, 'SyntaxError');
    const globals = await host.run(id('globals'), `module.exports = async () =>
      Object.getOwnPropertyNames(globalThis).filter((k) => !/^[A-Z]/.test(k) || /^(WebAssembly|Atomics)$/.test(k)).sort()`);
    assert.deepStrictEqual(globals.done.result, ['clearTimeout', 'decodeURI', 'decodeURIComponent', 'encodeURI',
      'encodeURIComponent', 'escape', 'eval', 'exports', 'globalThis', 'isFinite', 'isNaN', 'module', 'parseFloat',
      'parseInt', 'setTimeout', 'undefined', 'unescape'].sort());
  },

  async 'prototype pollution does not leak into the next task'(host) {
    const a = await host.run(id('pollute'), "module.exports = async () => { Object.prototype.polluted = 1; Array.prototype.push = null; globalThis.leak = 'x'; return 'ok' }");
    assert.strictEqual(a.done.result, 'ok');
    for (let i = 0; i < 4; i++) { // both threads, more than once
      const b = await host.run(id('after'), "module.exports = async () => [({}).polluted, typeof [].push, typeof leak]");
      assert.deepStrictEqual(b.done.result, [null, 'function', 'undefined']);
    }
  },

  async 'cancel mid-await answers cancelled, a late call_result is ignored'(host) {
    const taskId = id('cancel-await');
    let call = null;
    const running = host.run(taskId, "module.exports = async (i, c) => { await c.tasks.execute('slow', {}); return 'finished' }",
      { timeout_ms: 20000, onCall: (c) => { call = c; host.send({ op: 'cancel', id: taskId }); return null; } });
    const { r, ms } = await timed(() => running);
    limited(r, 'cancelled');
    assert.ok(ms < 2000, `cancelled after ${ms} ms`);
    host.send({ op: 'call_result', id: taskId, call: call.call, ok: true, result: 1 });
    host.send({ op: 'cancel', id: taskId });
  },

  async 'cancel mid-loop answers cancelled within the worker\'s 2 s'(host) {
    const taskId = id('cancel-loop');
    let t0 = 0;
    const r = await host.run(taskId, "module.exports = async (i, c) => { c.log('looping'); for (;;) {} }",
      { timeout_ms: 20000, onLog: () => { t0 = Date.now(); host.send({ op: 'cancel', id: taskId }); } });
    limited(r, 'cancelled');
    assert.ok(Date.now() - t0 < 2000);
  },
};

const onOneThread = {
  async 'tasks interleave on one thread at their awaits'(host) {
    const a = id('waiting');
    let callA = null;
    const first = host.run(a, "module.exports = async (i, c) => (await c.tasks.execute('child', { x: 1 })).echo.x + 1",
      { onCall: (c) => { callA = c; return null; } });
    await until(() => callA, 'the first task\'s call');
    const second = await host.run(id('meanwhile'), 'module.exports = async () => 42');
    assert.strictEqual(second.done.result, 42);
    host.send({ op: 'call_result', id: a, call: callA.call, ok: true, result: { echo: callA.input } });
    assert.strictEqual((await first).done.result, 2);
  },

  async 'a watchdog kill fails the other tasks of that thread and the host goes on'(host) {
    const waiting = id('bystander');
    let called = false;
    const bystander = host.run(waiting, "module.exports = async (i, c) => c.tasks.execute('never', {})",
      { timeout_ms: 60000, onCall: () => { called = true; return null; } });
    await until(() => called, 'the bystander\'s call');
    const hang = await host.run(id('hang'), NATIVE_HANG, { timeout_ms: 300 });
    limited(hang, 'timeout');
    const other = await bystander;
    assert.strictEqual(other.done.ok, false);
    assert.strictEqual(other.done.limit, null);
    assert.match(other.done.error.message, /^js engine thread restarted/);
    const after = await host.run(id('after-kill'), 'module.exports = (i) => i.n');
    assert.strictEqual(after.done.result, 7);
  },

  async 'a cancel reaches a task stuck in native code within the worker\'s 2 s'(host) {
    const taskId = id('cancel-native');
    const running = host.run(taskId, NATIVE_HANG, { timeout_ms: 60000 });
    await new Promise((r) => setTimeout(r, 200));
    const { r, ms } = await timed(() => { host.send({ op: 'cancel', id: taskId }); return running; });
    limited(r, 'cancelled');
    assert.ok(ms < 2000, `answered ${ms} ms after the cancel`);
    const after = await host.run(id('after-cancel'), 'module.exports = (i) => i.n');
    assert.strictEqual(after.done.result, 7);
  },
};

module.exports = { onSharedHost, onOneThread };
