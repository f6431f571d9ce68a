'use strict';
// Guest-side helpers, evaluated in every task's fresh QuickJS context BEFORE the task's code.
// The expression yields an array of functions the host keeps as handles; nothing is put on
// the guest's global object. They close over JSON.stringify / JSON.parse / String as they
// are before the task runs, so a task that replaces JSON.stringify cannot forge its own
// result text. A task can still tamper with prototypes its values use (toJSON, getters):
// that only changes its own output, and every helper's output is re-checked by the host.
const PRELUDE_FILENAME = '<engine>';

const PRELUDE_SOURCE = `(function () {
  'use strict';
  const stringify = JSON.stringify, parse = JSON.parse, str = String, ErrorType = Error, PromiseType = Promise,
    isArray = Array.isArray;

  class TaskError extends ErrorType {
    constructor(message, taskId, status) {
      super(message);
      this.name = 'TaskError';
      this.taskId = taskId;
      this.status = status;
    }
  }

  function fromJson(text) { return parse(text); }

  // JSON text of a value, or a TypeError saying why it has none.
  function toJson(value) {
    if (value === undefined) return 'null';
    const text = stringify(value);
    if (typeof text !== 'string') {
      throw new TypeError(typeof value === 'function' ? 'a function' :
        typeof value === 'symbol' ? 'a symbol' : 'no JSON form (' + typeof value + ')');
    }
    return text;
  }

  function formatOne(value) {
    try {
      if (typeof value === 'string') return value;
      if (value === undefined) return 'undefined';
      if (typeof value === 'function') return '[Function ' + (value.name || 'anonymous') + ']';
      if (typeof value === 'bigint') return str(value) + 'n';
      if (typeof value === 'symbol') return value.toString();
      if (value instanceof ErrorType) return str(value.name) + ': ' + str(value.message);
      const text = stringify(value);
      return typeof text === 'string' ? text : str(value);
    } catch (e) {
      return '[unprintable ' + typeof value + ']';
    }
  }

  // context.log(...args): strings as they are, everything else as JSON, joined by one space.
  function format() {
    let line = '';
    for (let i = 0; i < arguments.length; i++) line += (i ? ' ' : '') + formatOne(arguments[i]);
    return line;
  }

  // A thrown value as JSON {kind, name?, message?, stack?, value?}; never throws on odd values.
  function describeError(e) {
    const out = { kind: e === null ? 'null' : typeof e };
    if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
      try { if (e.name !== undefined) out.name = str(e.name); } catch (x) {}
      try { if (e.message !== undefined) out.message = str(e.message); } catch (x) {}
      try { if (typeof e.stack === 'string') out.stack = e.stack; } catch (x) {}
      if (out.message === undefined) out.value = formatOne(e);
    } else if (e !== undefined) {
      out.value = formatOne(e);
    }
    return stringify(out);
  }

  function taskError(message, taskId, status) { return new TaskError(message, taskId, status); }

  function invoke(fn, input, context) { return new PromiseType((resolve) => resolve(fn(input, context))); }

  // For "module.exports is not a function: it is ...".
  function kindOf(v) {
    return v === null ? 'null' : isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v;
  }

  return [fromJson, toJson, format, describeError, taskError, invoke, kindOf];
})()`;

const PRELUDE_NAMES = ['fromJson', 'toJson', 'format', 'describeError', 'taskError', 'invoke', 'kindOf'];

// The CommonJS shim, a script of its own so the task's file keeps its own line numbers.
const SHIM_SOURCE = 'var module = { exports: {} }; var exports = module.exports;';

module.exports = { PRELUDE_FILENAME, PRELUDE_SOURCE, PRELUDE_NAMES, SHIM_SOURCE };
