'use strict';
// The engine host through its wire protocol, as the C++ worker drives it.
// usage: node host_test.js ENGINE_DIR   (ENGINE_DIR: host.js + node_modules, e.g. build/worker/js)
// Exits 77 (ctest SKIP) when ENGINE_DIR has no node_modules or node is older than 18.
const fs = require('fs');
const path = require('path');

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..'));
if (Number(process.versions.node.split('.')[0]) < 18) {
  console.log(`SKIP: node ${process.version} is older than 18`);
  process.exit(77);
}
if (!fs.existsSync(path.join(dir, 'node_modules', 'quickjs-emscripten-core'))) {
  console.log(`SKIP: ${dir} has no node_modules (npm ci did not run: no npm?)`);
  process.exit(77);
}

const test = require('node:test');
const assert = require('assert');
const { Host } = require('./host_driver');
const cases = require('./cases');

// ONLY=regex runs the matching cases alone (while working on one).
const only = process.env.ONLY ? new RegExp(process.env.ONLY) : null;
const pick = (group) => Object.entries(group).filter(([name]) => !only || only.test(name));

test('engine host', async (t) => {
  const host = new Host(dir, ['--threads', '2', '--warmup', '1']);
  try {
    const ready = await host.ready();
    assert.deepStrictEqual(Object.keys(ready).sort(), ['engine', 'node', 'op', 'threads']);
    assert.strictEqual(ready.node, process.version);
    assert.strictEqual(ready.engine, 'quickjs-emscripten-core 0.32.0');
    assert.strictEqual(ready.threads, 2);
    let n = 0;
    // After every case the host must still answer an ordinary task.
    const alive = async () => {
      const id = `alive/${++n}`;
      const r = await host.run(id, 'module.exports = async (input) => ({ back: input })', { input: { k: n } });
      assert.deepStrictEqual(r.done, { op: 'done', id, ok: true, result: { back: { k: n } } });
    };
    for (const [name, fn] of pick(cases.onSharedHost)) {
      await t.test(name, async () => {
        await fn(host);
        await alive();
      });
    }
    assert.strictEqual(host.queue.length, 0, `unexpected messages: ${JSON.stringify(host.queue).slice(0, 500)}`);
    const exit = await host.close();
    assert.deepStrictEqual(exit, { code: 0, signal: null }, 'exit 0 at stdin EOF');
    // The host's own log: no aborted wasm (a leaked handle), no unhandled host error.
    assert.doesNotMatch(host.stderr, /Aborted|unhandled|uncaught|error handling/i, host.stderr);
  } finally {
    host.proc.kill('SIGKILL');
  }
});

test('engine host with one thread', async (t) => {
  const host = new Host(dir, ['--threads', '1', '--warmup', '0']);
  try {
    await host.ready();
    for (const [name, fn] of pick(cases.onOneThread)) await t.test(name, () => fn(host));
    assert.deepStrictEqual(await host.close(), { code: 0, signal: null });
  } finally {
    host.proc.kill('SIGKILL');
  }
});

test('bad arguments are refused', async () => {
  const host = new Host(dir, ['--threads', '0']);
  const exit = await host.close();
  assert.strictEqual(exit.code, 2);
  assert.match(host.stderr, /--threads: must be an integer 1\.\.64, got 0/);
});

test('pure helpers: arguments, run checks, positions, line caps', () => {
  const { parseArgs, checkRun } = require(path.join(dir, 'protocol.js'));
  const { positionIn, classify } = require(path.join(dir, 'errors.js'));
  const { capLine, formatTarget } = require(path.join(dir, 'calls.js'));
  assert.deepStrictEqual(parseArgs([]), { threads: 2, warmup: 4 });
  assert.deepStrictEqual(parseArgs(['--threads=3', '--warmup', '0']), { threads: 3, warmup: 0 });
  assert.throws(() => parseArgs(['--bogus', '1']), /unknown argument --bogus/);
  assert.deepStrictEqual(checkRun({ op: 'run', id: 'a/1', code: 'x' }).run,
    { op: 'run', id: 'a/1', code: 'x', filename: 'task.js', input: {}, memory_mb: 64, timeout_ms: 30000 });
  assert.match(checkRun({ id: 'a/1', code: 'x', memory_mb: 2049 }).error, /^run\.memory_mb: /);
  assert.match(checkRun({ id: 'a/1', code: 'x', filename: 'a\nb' }).error, /^run\.filename: /);
  assert.deepStrictEqual(positionIn('    at f (t(1).js:3:9)\n', 't(1).js'), { line: 3, column: 9 });
  assert.strictEqual(positionIn('    at f (other.js:3:9)\n', 'task.js'), null);
  assert.strictEqual(classify({ message: 'interrupted' }, 'object', 'cancelled', false), 'cancelled');
  assert.strictEqual(classify({ message: 'null was thrown' }, 'null', null, false), null);
  assert.strictEqual(classify({ message: 'null was thrown' }, 'null', null, true), 'memory');
  const euro = capLine('€'.repeat(30000)); // 3 bytes each: 90000 bytes
  assert.ok(Buffer.byteLength(euro) <= 64 * 1024 && !euro.includes('\uFFFD'));
  assert.strictEqual(capLine('short'), 'short');
  assert.deepStrictEqual(formatTarget({ task_type: 'command' }), { task_type: 'command', payload: {} });
});
