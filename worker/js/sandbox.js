'use strict';
// One js task in its own QuickJS sandbox: a fresh wasm instance (its linear memory capped at
// memory_mb + 16 MiB, the hard memory limit), a fresh runtime and context. The guest sees
// only ECMAScript built-ins plus `setTimeout`/`clearTimeout` (bounded) and the `input` and
// `context` arguments of its exported function. Promises are resolved by the host
// (newPromise + executePendingJobs): the sync build, because the asyncify build of 0.32.0
// breaks on the second awaited host call (upstream quickjs-emscripten #258).
const core = require('quickjs-emscripten-core');
const syncVariant = require('@jitl/quickjs-wasmfile-release-sync');
const { PRELUDE_FILENAME, PRELUDE_SOURCE, PRELUDE_NAMES, SHIM_SOURCE } = require('./prelude');
const { toWireError, classify } = require('./errors');
const { formatTarget, checkOptions, capLine } = require('./calls');

const variant = syncVariant.default || syncVariant;
const PAGE = 64 * 1024;
const BASE_PAGES = 256; // the build's INITIAL_MEMORY (16 MiB: static data + C stack); fewer fails to link
const STACK_BYTES = 256 * 1024; // QuickJS's own stack check, well inside the thread's 16 MiB stack
const MAX_TIMERS = 100;
const MAX_LOG_LINES = 10000;
const MAX_LOG_BYTES = 4 * 1024 * 1024;
const NEAR_CAP_BYTES = 8 * 1024 * 1024;

// A module that fails while loading (a syntax error, a throw at its top level, no exported
// function) fails alike on every attempt: `phase: "load"` lets the worker make the failure
// permanent instead of retrying it. A limit hit while loading is not marked.
function loadFailure(done) {
  if (!done.ok && !done.limit) done.phase = 'load';
  return done;
}

class TaskRun {
  // msg: the validated run message plus `deadline` (epoch ms) and `slot` (cancel/busy slot).
  // shared: Int32Array over the thread's SharedArrayBuffer ([0] = slot+1 of the task running
  // guest code now, [1 + slot] = cancel flag), so the main thread can stop us while we are
  // busy and knows whom to blame when it has to kill the thread.
  constructor(wasmModule, msg, send, shared) {
    this.wasmModule = wasmModule;
    this.msg = msg;
    this.send = send;
    this.shared = shared;
    this.filename = msg.filename;
    this.deadline = msg.deadline;
    this.stopped = null; // 'timeout' | 'cancelled' once the task must stop
    this.cancelled = false;
    this.calls = new Map(); // call number -> QuickJSDeferredPromise
    this.nextCall = 1;
    this.timers = new Map(); // timer id -> {timer, fn}
    this.nextTimer = 1;
    this.logLines = 0;
    this.logBytes = 0;
    this.logDropped = false;
    this.wake = null;
    this.finished = false;
  }

  // ---- entry points from the engine thread
  cancel() {
    this.cancelled = true;
    this.kick();
  }

  callResult(m) {
    const d = this.calls.get(m.call);
    if (!d || this.finished) return; // unknown call or task already done: ignored by contract
    this.calls.delete(m.call);
    try {
      this.guest(() => {
        if (m.ok) {
          const text = JSON.stringify(m.result === undefined ? null : m.result);
          const r = this.callHelper('fromJson', this.vm.newString(text));
          if (r.error) d.reject(r.error); else d.resolve(r.value);
          (r.error || r.value).dispose();
        } else {
          const args = [String(m.error || 'child task failed'), String(m.task_id || ''), String(m.status || 'failed')]
            .map((s) => this.vm.newString(s));
          const r = this.callHelper('taskError', ...args);
          d.reject(r.error || r.value);
          (r.error || r.value).dispose();
        }
      });
    } catch (e) {
      this.hostFailure = this.hostFailure || e;
    } finally {
      if (d.alive) d.dispose();
      this.kick();
    }
  }

  // ---- the run: resolves the `done` message (never rejects)
  async run() {
    const memoryMb = this.msg.memory_mb;
    this.maxBytes = (BASE_PAGES + memoryMb * 16) * PAGE;
    let tainted = false;
    try {
      // Fails under a small RLIMIT_AS: node reserves ~10 GiB of address space per wasm memory.
      this.memory = new WebAssembly.Memory({ initial: BASE_PAGES, maximum: BASE_PAGES + memoryMb * 16 });
      const qjs = await core.newQuickJSWASMModuleFromVariant(
        core.newVariant(variant, { wasmModule: this.wasmModule, wasmMemory: this.memory }));
      this.rt = qjs.newRuntime();
      this.rt.setMemoryLimit(memoryMb * 1024 * 1024); // catches single huge allocations early
      this.rt.setMaxStackSize(STACK_BYTES);
      this.rt.setInterruptHandler(() => this.shouldStop());
      this.vm = this.rt.newContext();
      return this.guest(() => this.start()) || (await this.drive());
    } catch (e) {
      // A host-level exception (wasm trap, V8 stack overflow in wasm frames, library bug):
      // the instance may be corrupt, so it is dropped without disposing.
      tainted = true;
      const limit = this.stopped || (/maximum call stack/i.test(e && e.message) ? 'stack'
        : /out of memory|memory access out of bounds/i.test(e && e.message) && this.nearCap() ? 'memory' : null);
      return this.failed({ name: 'EngineError', message: `${e && e.name}: ${e && e.message}`, stack: '' }, limit);
    } finally {
      this.finished = true;
      this.cleanup(tainted);
    }
  }

  // Evaluates the shim and the module, calls its export. Returns a done message when that
  // already decided the outcome, else undefined (the returned promise is driven next).
  start() {
    const vm = this.vm;
    this.helpers = {};
    const prelude = vm.evalCode(PRELUDE_SOURCE, PRELUDE_FILENAME, { type: 'global' });
    if (prelude.error) return this.failWith(prelude.error);
    for (let i = 0; i < PRELUDE_NAMES.length; i++) this.helpers[PRELUDE_NAMES[i]] = vm.getProp(prelude.value, i);
    prelude.value.dispose();
    this.installGlobals();
    const shim = vm.evalCode(SHIM_SOURCE, PRELUDE_FILENAME, { type: 'global' });
    if (shim.error) return this.failWith(shim.error);
    shim.value.dispose();

    const evaluated = vm.evalCode(this.msg.code, this.filename, { type: 'global' });
    if (evaluated.error) return loadFailure(this.failWith(evaluated.error));
    evaluated.value.dispose();

    const moduleH = vm.getProp(vm.global, 'module');
    const fn = vm.typeof(moduleH) === 'object' ? vm.getProp(moduleH, 'exports') : vm.undefined;
    moduleH.dispose();
    if (vm.typeof(fn) !== 'function') {
      const kind = this.callHelper('kindOf', fn); // disposes fn
      if (kind.error) return this.failWith(kind.error);
      const type = vm.getString(kind.value);
      kind.value.dispose();
      return loadFailure(this.failed({
        name: 'TypeError',
        message: `module.exports is not a function: it is ${type} ` +
          '(export the function itself: module.exports = async function execute(input, context) { ... })',
        stack: '',
      }, null));
    }
    const input = this.callHelper('fromJson', vm.newString(JSON.stringify(this.msg.input)));
    if (input.error) { fn.dispose(); return this.failWith(input.error); }
    // invoke: new Promise((resolve) => resolve(fn(input, context))), so a returned thenable
    // is adopted as `await` would, and a synchronous throw becomes the rejection.
    const called = this.callHelper('invoke', fn, input.value, this.makeContext());
    if (called.error) return this.failWith(called.error);
    this.promise = called.value;
    return undefined;
  }

  // Runs pending jobs until the export's promise settles; between rounds waits for a host
  // event (a call result, a timer, a cancel) or the deadline, whichever comes first.
  async drive() {
    for (;;) {
      const outcome = this.guest(() => {
        const jobs = this.rt.executePendingJobs();
        if (jobs.error) return this.failWith(jobs.error);
        if (this.hostFailure) throw this.hostFailure;
        const state = this.vm.getPromiseState(this.promise);
        if (state.type === 'fulfilled') {
          const holder = state.notAPromise ? this.promise : state.value;
          return this.resultDone(this.callHelper('toJson', holder)); // disposes state.value
        }
        if (state.type === 'rejected') return this.failWith(state.error);
        return undefined;
      });
      if (outcome) return outcome;
      if (this.shouldStop()) return this.stopDone();
      if (this.calls.size === 0 && this.timers.size === 0 && !this.rt.hasPendingJob()) {
        return this.failed({ name: 'Error', message: 'the promise returned by the exported function never settles ' +
          '(nothing is left to wait for: no context.tasks.execute call and no timer is pending)', stack: '' }, null);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, this.deadline - Date.now()) + 1);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
      this.wake = null;
    }
  }

  // ---- the guest's globals and context object
  installGlobals() {
    const vm = this.vm;
    vm.newFunction('setTimeout', (fnH, delayH) => {
      if (!fnH || vm.typeof(fnH) !== 'function') throw new TypeError('setTimeout: the first argument must be a function');
      if (this.timers.size >= MAX_TIMERS) throw new RangeError(`setTimeout: at most ${MAX_TIMERS} pending timers per task`);
      let delay = delayH && vm.typeof(delayH) === 'number' ? vm.getNumber(delayH) : 0;
      if (!(delay > 0)) delay = 0;
      // Never past the task's deadline: a timer due later fires just after it, finds the task
      // stopped and does not run; the task ends with limit timeout.
      delay = Math.min(delay, Math.max(0, this.deadline - Date.now()) + 1);
      const id = this.nextTimer++;
      const fn = fnH.dup();
      const timer = setTimeout(() => this.fireTimer(id), delay);
      this.timers.set(id, { timer, fn });
      return vm.newNumber(id);
    }).consume((f) => vm.setProp(vm.global, 'setTimeout', f));
    vm.newFunction('clearTimeout', (idH) => {
      const id = idH && vm.typeof(idH) === 'number' ? vm.getNumber(idH) : 0;
      const t = this.timers.get(id);
      if (t) { clearTimeout(t.timer); t.fn.dispose(); this.timers.delete(id); }
    }).consume((f) => vm.setProp(vm.global, 'clearTimeout', f));
  }

  fireTimer(id) {
    const t = this.timers.get(id);
    if (!t || this.finished) return;
    this.timers.delete(id);
    if (this.shouldStop()) { t.fn.dispose(); this.kick(); return; }
    try {
      this.guest(() => {
        const r = this.vm.callFunction(t.fn, this.vm.undefined);
        if (r.error) {
          // Like an uncaught exception in a browser timer: reported, the task goes on.
          if (!this.shouldStop()) this.log('uncaught exception in a setTimeout callback: ' + this.describe(r.error).message);
          r.error.dispose();
        } else {
          r.value.dispose();
        }
      });
    } catch (e) {
      this.hostFailure = this.hostFailure || e;
    } finally {
      if (t.fn.alive) t.fn.dispose();
      this.kick();
    }
  }

  makeContext() {
    const vm = this.vm;
    const context = vm.newObject();
    vm.newFunction('log', (...args) => {
      const r = this.callHelper('format', ...args.map((a) => a.dup()));
      if (r.error) throw r.error; // only when the task is out of time or memory
      const line = vm.getString(r.value);
      r.value.dispose();
      this.log(line);
    }).consume((f) => vm.setProp(context, 'log', f));
    const tasks = vm.newObject();
    vm.newFunction('execute', (targetH, inputH, optionsH) => this.execute(targetH, inputH, optionsH))
      .consume((f) => vm.setProp(tasks, 'execute', f));
    vm.setProp(context, 'tasks', tasks);
    tasks.dispose();
    return context;
  }

  // One log message per context.log call, until the task has logged MAX_LOG_LINES lines or
  // MAX_LOG_BYTES (the worker keeps only 1 MiB per stream anyway): then one note, then nothing.
  log(line) {
    if (this.logDropped) return;
    const text = capLine(line);
    this.logBytes += Buffer.byteLength(text);
    if (++this.logLines > MAX_LOG_LINES || this.logBytes > MAX_LOG_BYTES) {
      this.logDropped = true;
      this.send({ op: 'log', id: this.msg.id,
        line: `[context.log: more than ${MAX_LOG_LINES} lines or ${MAX_LOG_BYTES >> 20} MiB; the rest of this task's log is dropped]` });
      return;
    }
    this.send({ op: 'log', id: this.msg.id, line: text });
  }

  // context.tasks.execute(target, input, options) -> a promise the worker settles later.
  execute(targetH, inputH, optionsH) {
    const target = formatTarget(this.jsonOf(targetH, 'target'));
    const input = inputH === undefined || this.vm.typeof(inputH) === 'undefined' ? {} : this.jsonOf(inputH, 'input');
    const options = checkOptions(optionsH === undefined ? undefined : this.jsonOf(optionsH, 'options'));
    const call = this.nextCall++;
    const d = this.vm.newPromise();
    this.calls.set(call, d);
    this.send({ op: 'call', id: this.msg.id, call, target, input, options });
    return d.handle.dup(); // the VM consumes what we return; ours lives until the call settles
  }

  jsonOf(handle, what) {
    if (!handle) return undefined;
    if (this.vm.typeof(handle) === 'string') return this.vm.getString(handle);
    if (this.vm.typeof(handle) === 'undefined') return undefined;
    const r = this.callHelper('toJson', handle.dup());
    if (r.error) {
      const message = this.describe(r.error).message;
      r.error.dispose();
      throw new TypeError(`context.tasks.execute: ${what} is not JSON: ${message}`);
    }
    const text = this.vm.getString(r.value);
    r.value.dispose();
    return JSON.parse(text);
  }

  // ---- helpers
  callHelper(name, ...args) {
    try {
      return this.vm.callFunction(this.helpers[name], this.vm.undefined, ...args);
    } finally {
      for (const a of args) if (a.alive && a !== this.promise) a.dispose();
    }
  }

  // Marks this task as the one running guest code on this thread (see `shared`).
  guest(fn) {
    const slot = this.msg.slot;
    const previous = Atomics.load(this.shared, 0);
    Atomics.store(this.shared, 0, slot + 1);
    try {
      return fn();
    } finally {
      Atomics.store(this.shared, 0, previous);
    }
  }

  shouldStop() {
    if (this.stopped) return true;
    if (this.cancelled || Atomics.load(this.shared, 1 + this.msg.slot) !== 0) this.stopped = 'cancelled';
    else if (Date.now() > this.deadline) this.stopped = 'timeout';
    return this.stopped !== null;
  }

  nearCap() {
    return !!this.memory && this.memory.buffer.byteLength >= this.maxBytes - NEAR_CAP_BYTES;
  }

  kick() {
    if (this.wake) this.wake();
  }

  // Reads a thrown value through the prelude (briefly allowing guest code again after a
  // stop, so an interrupted task's error can still be read; 50 ms bounds odd getters).
  describe(errorH) {
    const stopped = this.stopped;
    const until = Date.now() + 50;
    this.rt.setInterruptHandler(() => Date.now() > until);
    let described = null;
    try {
      const r = this.callHelper('describeError', errorH.dup());
      if (!r.error) described = JSON.parse(this.vm.getString(r.value));
      (r.error || r.value).dispose();
    } catch (e) {
      described = null;
    } finally {
      this.stopped = stopped;
      this.rt.setInterruptHandler(() => this.shouldStop());
    }
    if (!described && this.vm.typeof(errorH) === 'string') described = { kind: 'string', value: this.vm.getString(errorH) };
    const error = toWireError(described, this.filename, { name: 'InternalError', message: 'out of memory' });
    error.kind = described ? described.kind : 'unknown';
    return error;
  }

  failWith(errorH) {
    const error = this.describe(errorH);
    errorH.dispose();
    return this.failed(error, undefined);
  }

  failed(error, limitOrUndefined) {
    const kind = error.kind;
    delete error.kind;
    const limit = limitOrUndefined !== undefined ? limitOrUndefined
      : classify(error, kind, this.stopped || (this.shouldStop() ? this.stopped : null), this.nearCap());
    if (limit === 'memory' && (kind === 'null' || kind === 'unknown')) {
      error.name = 'InternalError';
      error.message = 'out of memory';
    }
    if (limit === 'timeout' || limit === 'cancelled') {
      error.name = 'InternalError';
      error.message = limit === 'timeout' ? 'interrupted: the task ran past its deadline' : 'interrupted: the task was cancelled';
    }
    return { op: 'done', id: this.msg.id, ok: false, error, limit };
  }

  stopDone() {
    return this.failed({ name: 'InternalError', message: 'interrupted', stack: '' }, this.stopped);
  }

  resultDone(r) {
    if (r.error) {
      const error = this.describe(r.error);
      r.error.dispose();
      const kind = error.kind;
      const limit = classify(error, kind, this.stopped, this.nearCap());
      if (limit) return this.failed(Object.assign(error, { kind }), limit);
      return this.failed({ name: 'TypeError', message: 'result is not JSON: ' + error.message, stack: error.stack }, null);
    }
    const text = this.vm.getString(r.value);
    r.value.dispose();
    JSON.parse(text); // the text goes into the protocol line as is: it must be JSON
    return { op: 'done', id: this.msg.id, ok: true, resultText: text };
  }

  // Frees every host-held handle, then the context and runtime. The wasm instance itself
  // is dropped with this object (fresh per task), so a failed dispose costs nothing lasting.
  cleanup(tainted) {
    for (const t of this.timers.values()) clearTimeout(t.timer);
    if (tainted || !this.vm) return;
    try {
      for (const t of this.timers.values()) if (t.fn.alive) t.fn.dispose();
      for (const d of this.calls.values()) if (d.alive) d.dispose();
      for (const h of Object.values(this.helpers || {})) if (h.alive) h.dispose();
      if (this.promise && this.promise.alive) this.promise.dispose();
      this.vm.dispose();
      this.rt.dispose();
    } catch (e) {
      // A leaked handle (gc_obj_list assertion): harmless, the instance is dropped anyway.
    }
    this.timers.clear();
    this.calls.clear();
  }
}

module.exports = { TaskRun };
