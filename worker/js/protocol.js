'use strict';
// Checks a `run` message from the worker (pure). Defaults: filename task.js, input {},
// memory_mb 64, timeout_ms 30000. A bad field gets an error naming it.
const MAX_TIMEOUT_MS = 2147483647; // node's timer limit (24.8 days)

function checkRun(m) {
  if (typeof m.id !== 'string' || m.id.length === 0) return { error: 'run.id: must be a non-empty string' };
  if (typeof m.code !== 'string') return { error: 'run.code: must be a string (the module text)' };
  const filename = m.filename === undefined ? 'task.js' : m.filename;
  if (typeof filename !== 'string' || filename.length === 0 || filename.length > 200 || /[\n\r]/.test(filename)) {
    return { error: 'run.filename: must be a string of 1..200 characters without line breaks' };
  }
  const memoryMb = m.memory_mb === undefined || m.memory_mb === null ? 64 : m.memory_mb;
  if (!Number.isInteger(memoryMb) || memoryMb < 1 || memoryMb > 2048) {
    return { error: `run.memory_mb: must be an integer 1..2048, got ${JSON.stringify(m.memory_mb)}` };
  }
  const timeoutMs = m.timeout_ms === undefined || m.timeout_ms === null ? 30000 : m.timeout_ms;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > MAX_TIMEOUT_MS) {
    return { error: `run.timeout_ms: must be a number of milliseconds 1..${MAX_TIMEOUT_MS}, got ${JSON.stringify(m.timeout_ms)}` };
  }
  return {
    run: {
      op: 'run', id: m.id, code: m.code, filename, input: m.input === undefined ? {} : m.input,
      memory_mb: memoryMb, timeout_ms: Math.ceil(timeoutMs),
    },
  };
}

// Reads `--threads N` and `--warmup N` (also `--name=N`). Throws with a usage message.
function parseArgs(argv) {
  const out = { threads: 2, warmup: 4 };
  const limits = { threads: [1, 64], warmup: [0, 100] };
  for (let i = 0; i < argv.length; i++) {
    let [key, value] = argv[i].split('=', 2);
    const name = key.replace(/^--/, '');
    if (!key.startsWith('--') || !(name in limits)) throw new Error(`unknown argument ${argv[i]}`);
    if (value === undefined) value = argv[++i];
    const n = Number(value);
    const [lo, hi] = limits[name];
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${name}: must be an integer ${lo}..${hi}, got ${value}`);
    out[name] = n;
  }
  return out;
}

module.exports = { checkRun, parseArgs };
