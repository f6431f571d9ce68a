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
