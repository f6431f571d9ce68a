'use strict';
// The engine threads and the watchdog (main thread side). A new task goes to the thread
// with the fewest tasks. Each thread shares an Int32Array with us: [0] = 1 + the slot of
// the task running guest code right now (0 = none), [1 + slot] = that task's cancel flag.
// QuickJS's interrupt handler sees the cancel flag even while the thread is busy; native
// recursion (a deep JSON.stringify, say) sees nothing, so a task still running past its
// deadline + grace, or past a cancel + grace, gets its whole thread terminated.
const path = require('path');
const { Worker } = require('worker_threads');

const SLOTS = 1024; // tasks at once per thread; slot SLOTS is the thread's warm-up slot
const DEADLINE_GRACE_MS = 1000; // beyond the in-thread deadline before the thread is killed
const CANCEL_GRACE_MS = 500; // the worker kills the whole host 2 s after a cancel
const WATCHDOG_INTERVAL_MS = 100;

class EngineThread {
  constructor(index, pool) {
    this.index = index;
    this.pool = pool;
    this.shared = new Int32Array(new SharedArrayBuffer(4 * (SLOTS + 2)));
    this.freeSlots = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);
    this.tasks = new Map(); // id -> task (see EnginePool.run), until the thread says done
    this.dead = false;
    this.warm = false;
    this.worker = new Worker(path.join(__dirname, 'engine_thread.js'), {
      workerData: { wasmModule: pool.wasmModule, sharedBuffer: this.shared.buffer, warmup: pool.warmup, warmupSlot: SLOTS },
      resourceLimits: { stackSizeMb: 16 },
    });
    this.worker.on('message', (m) => { if (!this.dead) pool.fromThread(this, m); });
    this.worker.on('error', (e) => pool.threadDied(this, `error: ${e && e.stack || e}`));
    this.worker.on('exit', (code) => pool.threadDied(this, `exited with code ${code}`));
  }

  busySlot() {
    return Atomics.load(this.shared, 0) - 1;
  }

  takeSlot() {
    const slot = this.freeSlots.pop();
    if (slot === undefined) return -1;
    Atomics.store(this.shared, 1 + slot, 0);
    return slot;
  }

  releaseSlot(slot) {
    Atomics.store(this.shared, 1 + slot, 0);
    this.freeSlots.push(slot);
  }

  kill() {
    this.dead = true;
    this.worker.terminate().catch(() => {});
  }
}

class EnginePool {
  // write(message): one protocol message to stdout; log(text): one line to stderr.
  constructor({ threads, warmup, wasmModule, write, log, onReady, onFatal }) {
    Object.assign(this, { warmup, wasmModule, write, log, onReady, onFatal });
    this.tasks = new Map(); // id -> {id, thread, slot, deadline, cancelledAt, answered}
    this.threads = [];
    for (let i = 0; i < threads; i++) this.threads.push(new EngineThread(i, this));
    this.readySent = false;
    this.restarts = []; // times of recent restarts: a thread that dies on every start is fatal
    this.watchdog = setInterval(() => this.check(Date.now()), WATCHDOG_INTERVAL_MS);
  }

  // msg: a checked run message. Answers at once when it cannot run.
  run(msg) {
    if (this.tasks.has(msg.id)) {
      this.answerError(msg.id, 'EngineError', `run.id: a task with id ${msg.id} is already running on this host`, null);
      return;
    }
    let thread = null;
    for (const t of this.threads) if (!thread || t.tasks.size < thread.tasks.size) thread = t;
    const slot = thread.takeSlot();
    if (slot < 0) {
      this.answerError(msg.id, 'EngineError', `too many tasks on one engine thread (at most ${SLOTS})`, null);
      return;
    }
    const deadline = Date.now() + msg.timeout_ms;
    const task = { id: msg.id, thread, slot, deadline, cancelledAt: 0, answered: false };
    this.tasks.set(msg.id, task);
    thread.tasks.set(msg.id, task);
    thread.worker.postMessage(Object.assign({}, msg, { deadline, slot }));
  }

  callResult(m) {
    const task = this.tasks.get(m.id);
    if (task && !task.answered) task.thread.worker.postMessage(m);
  }

  cancel(m) {
    const task = this.tasks.get(m.id);
    if (!task || task.answered || task.cancelledAt) return;
    task.cancelledAt = Date.now();
    Atomics.store(task.thread.shared, 1 + task.slot, 1); // seen by the interrupt handler, even mid-loop
    task.thread.worker.postMessage({ op: 'cancel', id: m.id }); // wakes a task waiting on the host
  }

  fromThread(thread, m) {
    if (m.op === 'log' || m.op === 'call') {
      const task = this.tasks.get(m.id);
      if (task && !task.answered) this.write(m);
    } else if (m.op === 'done') {
      const task = thread.tasks.get(m.id);
      if (!task) return;
      thread.tasks.delete(m.id);
      this.tasks.delete(m.id);
      thread.releaseSlot(task.slot);
      if (!task.answered) { task.answered = true; this.write(m); }
    } else if (m.op === 'warm') {
      thread.warm = true;
      this.log(`engine thread ${thread.index} warm (${m.ms} ms)`);
      if (!this.readySent && this.threads.every((t) => t.warm)) { this.readySent = true; this.onReady(); }
    } else if (m.op === 'warm_failed') {
      this.onFatal(`engine thread ${thread.index} failed its warm-up: ${m.error}`);
    } else if (m.op === 'stderr') {
      this.log(m.text);
    }
  }

  // The watchdog: a task past deadline + grace (or cancel + grace) is answered here. If its
  // thread is running that task's guest code right now, the thread is stuck in it: kill it.
  check(now) {
    for (const thread of this.threads) {
      if (thread.dead) continue;
      const busy = thread.busySlot();
      for (const task of thread.tasks.values()) {
        if (task.answered) continue;
        const limit = task.cancelledAt && now > task.cancelledAt + CANCEL_GRACE_MS ? 'cancelled'
          : now > task.deadline + DEADLINE_GRACE_MS ? 'timeout' : null;
        if (!limit) continue;
        if (task.slot === busy) {
          this.restart(thread, task, limit);
          break;
        }
        // Not running right now (waiting behind another task's guest code): answer it; the
        // thread cleans it up when it gets to the cancel.
        this.answerLimit(task, limit);
        Atomics.store(thread.shared, 1 + task.slot, 1);
        thread.worker.postMessage({ op: 'cancel', id: task.id });
      }
    }
  }

  restart(thread, culprit, limit) {
    this.log(`engine thread ${thread.index}: task ${culprit.id} is still running ` +
      `${limit === 'timeout' ? 'past its deadline' : 'after its cancel'} (native code ignores interrupts); ` +
      'terminating the thread and starting a new one');
    this.replace(thread, (task) => {
      if (task === culprit) return this.answerLimit(task, limit);
      this.answerError(task.id, 'EngineError', 'js engine thread restarted (another task on it overran its deadline)', null);
      task.answered = true;
    });
  }

  threadDied(thread, reason) {
    if (thread.dead) return; // we terminated it ourselves
    if (!thread.warm) {
      this.onFatal(`engine thread ${thread.index} died while starting: ${reason}`);
      return;
    }
    this.log(`engine thread ${thread.index} died: ${reason}; starting a new one`);
    this.replace(thread, (task) => {
      this.answerError(task.id, 'EngineError', `js engine thread restarted (it died: ${reason.split('\n')[0]})`, null);
      task.answered = true;
    });
  }

  // Kills `thread`, settles each of its unanswered tasks with `settle`, starts a new thread.
  replace(thread, settle) {
    thread.kill();
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < 10000).concat(now);
    for (const task of thread.tasks.values()) {
      this.tasks.delete(task.id);
      if (!task.answered) settle(task);
    }
    thread.tasks.clear();
    if (this.restarts.length > 20) {
      this.onFatal('engine threads restarted more than 20 times in 10 s');
      return;
    }
    let fresh;
    try {
      fresh = new EngineThread(thread.index, this);
    } catch (e) {
      this.onFatal(`cannot start a new engine thread: ${e && e.message}`);
      return;
    }
    fresh.warm = true; // the host is already ready; tasks may interleave with its warm-up
    this.threads[thread.index] = fresh;
  }

  answerLimit(task, limit) {
    task.answered = true;
    const message = limit === 'timeout' ? 'interrupted: the task ran past its deadline (its engine was stopped)'
      : 'interrupted: the task was cancelled (its engine was stopped)';
    this.write({ op: 'done', id: task.id, ok: false, error: { name: 'InternalError', message, stack: '' }, limit });
  }

  answerError(id, name, message, limit) {
    this.write({ op: 'done', id, ok: false, error: { name, message, stack: '' }, limit });
  }
}

module.exports = { EnginePool, SLOTS, DEADLINE_GRACE_MS, CANCEL_GRACE_MS };
