// What the playground tests share: the real server (ASSISTANTS_BIN) on a local store with a
// key, the scripted Chat Completions stand-in (LLM_STANDIN_BIN), and Debian's Chromium
// (/usr/bin/chromium, or CHROMIUM_BIN) driven by playwright-core, with every console error,
// uncaught exception and Content-Security-Policy violation of a page recorded.
// Missing binaries are failures, not skips.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const API_KEY = 'sk-playground-test-key';
const TENANT = 'tenantplayground';
const READY_TIMEOUT_MS = 20_000;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOTS = path.join(ROOT, 'target', 'playground-screenshots');

// The flags this machine needs (no sandbox as root, no background connections to hosts the
// network refuses); playwright-core gives each launch a fresh profile directory.
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function requiredBin(name, fallback) {
  const value = (process.env[name] || fallback || '').trim();
  if (!value) throw new Error(`${name} is not set; run the suite through scripts/test.sh`);
  try {
    fs.accessSync(value, fs.constants.X_OK);
  } catch {
    throw new Error(`${name}=${value} is not an executable file (scripts/chromium-deps.sh installs chromium)`);
  }
  return value;
}

async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function tail(file, max = 4000) {
  try {
    return fs.readFileSync(file, 'utf8').slice(-max);
  } catch (e) {
    return `<cannot read ${file}: ${e.message}>`;
  }
}

async function stopProcess(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function startStandIn(logFile) {
  const bin = requiredBin('LLM_STANDIN_BIN');
  const log = fs.openSync(logFile, 'a');
  const child = spawn(bin, ['0'], { stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const lines = readline.createInterface({ input: child.stdout });
  let timer;
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => line),
    once(child, 'exit').then(([code]) => {
      throw new Error(`llm-standin exited with ${code}: ${tail(logFile)}`);
    }),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`llm-standin did not start: ${tail(logFile)}`)), 10_000);
    }),
  ]).finally(() => clearTimeout(timer));
  const m = /^listening on (http:\/\/\S+\/v1)$/.exec(first.trim());
  if (!m) {
    child.kill('SIGKILL');
    throw new Error(`unexpected first line from llm-standin: ${JSON.stringify(first)}`);
  }
  lines.on('line', () => {});
  return { child, baseURL: m[1], root: m[1].slice(0, -'/v1'.length) };
}

async function startServer(dir, standin, logFile) {
  const bin = requiredBin('ASSISTANTS_BIN');
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const log = fs.openSync(logFile, 'a');
  const child = spawn(bin, [], {
    cwd: dir,
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      STORAGE: 'local',
      DATA_DIR: dataDir,
      ASSISTANTS_API_KEYS: `${API_KEY}=${TENANT}`,
      OPENAI_BASE_URL: standin.baseURL,
      OPENAI_API_KEY: 'sk-standin',
      CODE_INTERPRETER: 'local',
      RUST_LOG: 'info',
      PORT: String(port),
      BIND: '127.0.0.1',
    },
  });
  fs.closeSync(log);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${tail(logFile)}`);
    try {
      await fetch(`${base}/v1/assistants`);
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopProcess(child, 'SIGKILL');
      throw new Error(`server did not answer within ${READY_TIMEOUT_MS} ms:\n${tail(logFile)}`);
    }
    await delay(100);
  }
  return { child, base };
}

/** Starts everything; `env.close()` stops it. */
export async function startEnvironment() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'assistants-playground-'));
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const standin = await startStandIn(path.join(tmp, 'standin.log'));
  const serverLog = path.join(tmp, 'server.log');
  const server = await startServer(tmp, standin, serverLog);
  const browser = await chromium.launch({
    executablePath: requiredBin('CHROMIUM_BIN', '/usr/bin/chromium'),
    args: CHROMIUM_FLAGS,
    headless: true,
  });
  const env = {
    tmp,
    base: server.base,
    browser,
    serverLog: () => tail(serverLog, 6000),
    serverLogPath: serverLog,
    async close() {
      await browser.close().catch(() => {});
      await stopProcess(server.child, 'SIGTERM');
      await stopProcess(standin.child, 'SIGINT');
      fs.rmSync(tmp, { recursive: true, force: true });
    },
    /** Appends scripted answers for `model` to the stand-in. */
    async script(model, ...responses) {
      const res = await fetch(`${standin.root}/_script`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, responses }),
      });
      assert.equal(res.status, 200);
    },
    async llmRequests(model) {
      const res = await fetch(`${standin.root}/_requests?model=${encodeURIComponent(model)}`);
      return res.json();
    },
    /** A call of the API with the test's key (to set things up and to check the page's work). */
    async api(method, apiPath, body) {
      const res = await fetch(`${server.base}/v1/${apiPath}`, {
        method,
        headers: {
          Authorization: `Bearer ${API_KEY}`,
          'OpenAI-Beta': 'assistants=v2',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = await res.json();
      assert.ok(res.ok, `${method} ${apiPath}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    /** Opens the playground in a fresh context and enters `key` (none: no key). */
    async open({ key = API_KEY, width = 1400, height = 1000, hash = '' } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
      const page = await context.newPage();
      page.problems = [];
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') {
          page.problems.push(`console ${msg.type()}: ${msg.text()}`);
        }
      });
      page.on('pageerror', (err) => page.problems.push(`uncaught: ${err.message}`));
      // CSP violations are also console errors; recording them here names the directive.
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
        });
      });
      await page.goto(`${server.base}/playground/${hash}`);
      if (key) {
        await page.fill('#api-key', key);
        await page.click('#key-save');
      }
      return page;
    },
  };
  return env;
}

/**
 * The page logged no error or warning, threw nothing and broke no policy. `expectedStatuses`
 * are HTTP statuses of API answers the test provoked on purpose (Chromium logs each non-2xx
 * fetch as "Failed to load resource").
 */
export function assertNoConsoleErrors(page, expectedStatuses = []) {
  const unexpected = page.problems.filter((p) => !expectedStatuses.some(
    (s) => p.includes(`Failed to load resource: the server responded with a status of ${s}`),
  ));
  assert.deepEqual(unexpected, [], 'the page logged errors');
}

export async function screenshot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Waits until `predicate()` is truthy (polled), or fails naming `what`. */
export async function until(predicate, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}
