'use strict';
// Pure helpers: turn what a task threw into the wire protocol's error object and decide
// which limit (if any) ended it. No QuickJS handles here, so they are easy to reason about.
const { PRELUDE_FILENAME } = require('./prelude');

const MAX_NAME = 200;
const MAX_TEXT = 64 * 1024; // message and stack each: an error is reported, not streamed

function cap(text, max) {
  if (typeof text !== 'string') return text;
  return text.length <= max ? text : text.slice(0, max) + '... [truncated]';
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// QuickJS puts the position only in the stack ("    at f (task.js:2:13)" or, for a syntax
// error, "    at task.js:2:13"): the first frame in the task's own file gives line:column.
function positionIn(stack, filename) {
  if (typeof stack !== 'string' || !filename) return null;
  const m = new RegExp(escapeRegExp(filename) + ':(\\d+):(\\d+)').exec(stack);
  return m ? { line: Number(m[1]), column: Number(m[2]) } : null;
}

// Frames of the engine's own helpers mean nothing to the task's author.
function stripEngineFrames(stack) {
  if (typeof stack !== 'string') return '';
  return stack.split('\n').filter((l) => !l.includes(PRELUDE_FILENAME)).join('\n');
}

// described: the prelude's describeError output ({kind, name?, message?, stack?, value?}),
// or null when even that failed (then `fallback` says what we know).
function toWireError(described, filename, fallback) {
  const d = described || { kind: 'unknown' };
  let name;
  let message;
  if (d.kind === 'object' || d.kind === 'function') {
    name = d.name && d.name !== 'undefined' ? d.name : 'Error';
    message = d.message !== undefined ? d.message : 'thrown value ' + (d.value || '(unprintable)');
  } else if (d.kind === 'null') {
    name = 'Error';
    message = 'null was thrown';
  } else if (d.kind === 'undefined') {
    name = 'Error';
    message = 'undefined was thrown';
  } else if (d.kind === 'unknown') {
    name = (fallback && fallback.name) || 'EngineError';
    message = (fallback && fallback.message) || 'the task failed and its error could not be read';
  } else {
    name = 'Error';
    message = d.value !== undefined ? d.value : d.kind + ' was thrown';
  }
  const stack = stripEngineFrames(d.stack);
  const out = { name: cap(name, MAX_NAME), message: cap(message, MAX_TEXT), stack: cap(stack, MAX_TEXT) };
  const pos = positionIn(stack, filename);
  if (pos) Object.assign(out, pos);
  return out;
}

// Which limit ended the task. `stopped` is what the interrupt handler / driver saw
// ('timeout' | 'cancelled' | null); `nearCap` says the wasm memory had grown to its cap.
function classify(error, kind, stopped, nearCap) {
  if (stopped) return stopped;
  const message = String((error && error.message) || '');
  if (/out of memory/i.test(message)) return 'memory';
  if (kind === 'null' && nearCap) return 'memory'; // QuickJS throws null when it cannot even allocate the error
  if (nearCap && /string too long|invalid array length|array buffer/i.test(message)) return 'memory';
  if (/stack overflow|maximum call stack/i.test(message)) return 'stack';
  return null;
}

module.exports = { toWireError, classify, positionIn, stripEngineFrames, cap };
