'use strict';
// Test driver for the engine host: spawns `node host.js`, plays the C++ worker's side of
// the line protocol. Every wait is bounded (a stuck host fails the test, never hangs it).
const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');

class Host {
  // dir: the engine directory (host.js + node_modules); args: host arguments.
  constructor(dir, args = []) {
    this.proc = spawn(process.execPath, [path.join(dir, 'host.js'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.queue = [];
    this.waiters = [];
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const m = JSON.parse(line); // a line that is not JSON fails the test right here
      this.queue.push(m);
      this.flush();
    });
  }

  flush() {
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i];
      const k = this.queue.findIndex(w.match);
      if (k >= 0) {
        const [m] = this.queue.splice(k, 1);
        this.waiters.splice(i--, 1);
        clearTimeout(w.timer);
        w.resolve(m);
      }
    }
  }

  // The next message matching `match`, within `ms`.
  next(match, ms = 10000, what = 'a message') {
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${what} within ${ms} ms; stderr:\n${this.stderr.slice(-2000)}`));
      }, ms);
      this.waiters.push(w);
      this.flush();
    });
  }

  send(m) {
    this.proc.stdin.write((typeof m === 'string' ? m : JSON.stringify(m)) + '\n');
  }

  ready(ms = 30000) {
    return this.next((m) => m.op === 'ready', ms, 'ready');
  }

  // Runs a task to its done. onCall(call) -> {ok, result} | {ok:false, error, ...} | null
  // (null: leave unanswered); onLog(line). Returns {done, logs, calls}.
  async run(id, code, opts = {}) {
    const { onCall = (c) => ({ ok: true, result: { echo: c.input } }), onLog = () => {}, wait = 15000, ...fields } = opts;
    this.send({ op: 'run', id, code, input: { n: 7 }, memory_mb: 64, timeout_ms: 5000, ...fields });
    const logs = [];
    const calls = [];
    const deadline = Date.now() + wait;
    for (;;) {
      const m = await this.next((x) => x.id === id, Math.max(1, deadline - Date.now()), `done for ${id}`);
      if (m.op === 'done') return { done: m, logs, calls };
      if (m.op === 'log') { logs.push(m.line); onLog(m.line); }
      if (m.op === 'call') {
        calls.push(m);
        const answer = onCall(m);
        if (answer) this.send({ op: 'call_result', id, call: m.call, ...answer });
      }
    }
  }

  // Closes stdin and waits (bounded) for the exit; kills the host if it does not go.
  async close(ms = 5000) {
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}

module.exports = { Host };
