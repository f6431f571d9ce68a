'use strict';
// browser_record's host (DESIGN.md "Browser automation"): Playwright's recorder, as
// `playwright codegen` runs it, on the system Chromium and the worker's X display.
//
// Input: one JSON object on stdin
//   {"url", "target", "chromium", "work_dir", "user_data_dir"?, "max_seconds"?}
// (the worker's browser_record handler checked every field; this re-checks the shape only).
// Output: one JSON line on stdout when the recording ends
//   {"code", "target", "url", "ended": "closed"|"max_seconds", "seconds"}
// and progress lines on stderr, among them `recorder: cdp_url=http://127.0.0.1:PORT`.
// Exit 0 with that line, 1 (message on stderr) when the recording could not start.
//
// Design assumptions:
// - playwright-core is pinned (package-lock.json) because the recorder is reached through
//   BrowserContext._enableRecorder, the entry point Playwright's own `codegen` command
//   uses; it is not public API and may change between releases.
// - The browser is started with --remote-debugging-port=0 on 127.0.0.1, as the worker's
//   persistent browsers are: a program on the worker (a test, an agent) may drive the
//   page being recorded, and what it does is recorded like a person's clicks.
// - Without user_data_dir the browser gets a fresh profile in a temp dir (codegen's default);
//   with one (a leased profile: its cookies and logins) a persistent context, as
//   `codegen --user-data-dir` does. In that case Playwright's generated script lacks the
//   line that opens the first page (upstream codegen behaves alike).

const fs = require('fs');
const path = require('path');

// The recorder's languages as `playwright codegen --target` names them (the worker's
// handler holds the same list).
const TARGETS = ['python', 'python-async', 'python-pytest', 'javascript', 'playwright-test',
  'java', 'java-junit', 'csharp', 'csharp-mstest', 'csharp-nunit', 'csharp-xunit'];

function fail(message) {
  process.stderr.write(`recorder: ${message}\n`);
  process.exit(1);
}

function readJob() {
  let job;
  try {
    job = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    fail(`stdin is not a JSON job: ${e.message}`);
  }
  for (const key of ['url', 'target', 'chromium', 'work_dir']) {
    if (typeof job[key] !== 'string' || job[key] === '') fail(`job.${key} must be a non-empty string`);
  }
  if (!TARGETS.includes(job.target)) fail(`job.target '${job.target}' is not one of ${TARGETS.join(', ')}`);
  if (job.max_seconds !== undefined && !(typeof job.max_seconds === 'number' && job.max_seconds > 0)) {
    fail('job.max_seconds must be a positive number');
  }
  if (!process.env.DISPLAY) fail('DISPLAY is not set: the recorder needs an X display');
  return job;
}

// The CDP port Chromium wrote into DevToolsActivePort of the profile it runs on; the
// non-persistent launch makes that profile itself, as playwright_chromiumdev_profile-* in
// the temp dir (job.temp_dir).
async function findCdpPort(job, deadlineMs) {
  while (Date.now() < deadlineMs) {
    const dirs = job.user_data_dir
      ? [job.user_data_dir]
      : fs.readdirSync(job.temp_dir).filter((n) => n.startsWith('playwright_chromiumdev_profile-'))
        .map((n) => path.join(job.temp_dir, n));
    for (const dir of dirs) {
      try {
        const port = parseInt(fs.readFileSync(path.join(dir, 'DevToolsActivePort'), 'utf8').split('\n')[0], 10);
        if (port > 0) return port;
      } catch (e) { /* not written yet */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

async function main() {
  const job = readJob();
  // Playwright's temp profile and artifacts go to os.tmpdir(), and Chromium (the recorded
  // browser and the recorder's own window) puts its singleton socket in $TMPDIR: under a
  // deep attempt directory that socket's path exceeds the 108 bytes a Unix socket may have
  // ("Socket path too long"), so both get a short directory of their own, removed at the end.
  const tmp = fs.mkdtempSync('/tmp/rc-record-');
  process.env.TMPDIR = tmp;
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  job.temp_dir = tmp;
  const { chromium } = require('playwright-core');
  const launch = {
    executablePath: job.chromium,
    headless: false,
    args: ['--remote-debugging-port=0', '--remote-debugging-address=127.0.0.1'],
    handleSIGINT: false,
  };
  let browser;
  let context;
  if (job.user_data_dir) {
    context = await chromium.launchPersistentContext(job.user_data_dir, launch);
    browser = context.browser();
  } else {
    browser = await chromium.launch(launch);
    context = await browser.newContext();
  }
  const outputFile = path.join(job.work_dir, 'recording.out');
  let ended = 'closed';
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  let closing = false;
  const close = (why) => {
    if (closing) return;
    closing = true;
    ended = why;
    context.close().catch(() => {}).then(() => (browser ? browser.close() : null)).catch(() => {}).then(resolveDone);
  };
  context.on('close', () => close(ended));
  if (browser) browser.on('disconnected', () => close(ended));
  // As codegen: the recording ends when the last page is closed.
  context.on('page', (page) => {
    page.on('close', () => {
      if (context.pages().length === 0) close('closed');
    });
  });
  await context._enableRecorder({
    language: job.target,
    mode: 'recording',
    outputFile,
    launchOptions: { headless: false },
    contextOptions: {},
    handleSIGINT: false,
  });
  const page = context.pages()[0] || await context.newPage();
  await page.goto(job.url);
  // max_seconds and `seconds` count from here: the page is in front of the user.
  const started = Date.now();
  const port = await findCdpPort(job, Date.now() + 10000);
  process.stderr.write(`recorder: recording ${job.url} as ${job.target}` +
    (port ? `; cdp_url=http://127.0.0.1:${port}` : '; no CDP port found') + '\n');
  if (job.max_seconds) setTimeout(() => close('max_seconds'), job.max_seconds * 1000).unref();
  await done;
  let code = '';
  try {
    code = fs.readFileSync(outputFile, 'utf8');
  } catch (e) { /* nothing was recorded */ }
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  process.stdout.write(JSON.stringify({ code, target: job.target, url: job.url, ended, seconds }) + '\n');
  process.stderr.write(`recorder: ended (${ended}) after ${seconds} s\n`);
}

main().then(() => process.exit(0), (e) => fail(e && e.message ? e.message : String(e)));
