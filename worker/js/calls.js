'use strict';
// Pure checks for what the guest hands to the host: context.tasks.execute's target and
// options, and context.log's line cap. Thrown errors become exceptions in the guest.
const MAX_LINE_BYTES = 64 * 1024;
const LINE_CUT_NOTE = ' ... [line truncated at 64 KiB]';

// A published task's name (string) or {task_type, payload} for any other task type.
function formatTarget(target) {
  if (typeof target === 'string') {
    if (target.length === 0) throw new TypeError('context.tasks.execute: the task name is empty');
    return target;
  }
  if (target && typeof target === 'object' && !Array.isArray(target)) {
    if (typeof target.task_type !== 'string' || target.task_type.length === 0) {
      throw new TypeError('context.tasks.execute: target.task_type must be a non-empty string');
    }
    const payload = target.payload === undefined ? {} : target.payload;
    if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new TypeError('context.tasks.execute: target.payload must be an object');
    }
    return { task_type: target.task_type, payload };
  }
  throw new TypeError('context.tasks.execute: the target must be a published task name or ' +
    '{task_type, payload}, got ' + (target === null ? 'null' : Array.isArray(target) ? 'an array' : typeof target));
}

// The worker checks the keys (timeout_seconds, max_retries, priority, memory_mb); here
// only the shape, so the call message stays an object.
function checkOptions(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('context.tasks.execute: options must be an object, got ' +
      (Array.isArray(options) ? 'an array' : typeof options));
  }
  return options;
}

// At most 64 KiB of UTF-8 per log line (the worker caps the task's total output).
function capLine(line) {
  if (line.length * 3 <= MAX_LINE_BYTES) return line; // fast path: cannot exceed in UTF-8
  const bytes = Buffer.from(line, 'utf8');
  if (bytes.length <= MAX_LINE_BYTES) return line;
  const keep = bytes.subarray(0, MAX_LINE_BYTES - Buffer.byteLength(LINE_CUT_NOTE)).toString('utf8');
  return keep.replace(/\uFFFD+$/, '') + LINE_CUT_NOTE; // drop a character cut in half
}

module.exports = { formatTarget, checkOptions, capLine, MAX_LINE_BYTES };
